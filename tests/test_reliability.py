"""Reliability (issue 13, docs/reliability.md): full disks, damaged files, killed writers and
repair, signals, a live path claimed twice, injected instrument faults, interlocks, tagger
overflows and ``--frames 1``."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.acquisition import RunControl, RunEvent, RunState, StateChanged
from cryoscope.analysis import analyze_file
from cryoscope.backends import open_rig
from cryoscope.cli import main
from cryoscope.config import default_config_path
from cryoscope.datafile import (
    WRITER_DIED,
    open_h5,
    open_measurement,
    read_superblock,
)
from cryoscope.datafile import writer as writer_module
from cryoscope.datafile.superblock import lookup3
from cryoscope.engine import run_plan
from cryoscope.plans import make_plan
from tests.spine_helpers import small_config

#: The command line as the installed ``cryoscope`` script runs it.
CLI = [sys.executable, "-c", "import sys; from cryoscope.cli import main; sys.exit(main())"]
#: Generous: a reader that fails fast takes seconds (mostly imports); the hang it replaces took
#: over 30 minutes.
READER_TIMEOUT_S = 60


def cli(*args: str, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          **kw)  # type: ignore[call-overload]


def messages(stderr: str) -> list[str]:
    """stderr without the progress bar's lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


def config_file(tmp_path: Path, name: str = "c.toml", extra: str = "", **replace: str) -> Path:
    text = default_config_path().read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text + extra)
    return path


def set_write_mark(path: Path, flags: int = 5) -> None:
    """Put back the open-for-write mark a killed SWMR writer leaves (the inverse of repair)."""
    block = read_superblock(path)
    n = 12 + 4 * block.size_of_offsets
    with open(path, "r+b") as f:
        head = bytearray(f.read(n))
        head[11] = flags
        f.seek(0)
        f.write(bytes(head) + struct.pack("<I", lookup3(bytes(head))))


@pytest.fixture(scope="module")
def finished_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "m.h5"
    assert main(["run", "--frames", "12", "--exposure", "0.25", "--dwell", "1", "--out",
                 str(out)]) == 0
    return out


# -- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MB tmpfs, where the test may mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the simulated small disk covers the case)")
    stat = os.statvfs(mount)
    if stat.f_blocks * stat.f_frsize > 16 << 20:  # a sandbox whose mount is a no-op
        subprocess.run(["umount", str(mount)], check=False)
        pytest.skip("the tmpfs mount took no effect here (the simulated small disk covers it)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _file_size_limit(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _check_failed_write(out: Path, result: subprocess.CompletedProcess[str], cause: str,
                        frames_run: int = 200, ended_early: bool = True) -> None:
    assert result.returncode == 1, result.stderr
    lines = messages(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "run failed" in lines[0] and cause in lines[0] and "Traceback" not in result.stderr
    with h5py.File(out, "r") as f:  # plain HDF5 opens it: closed properly
        assert f.attrs["status"] == "failed"
        assert cause in f.attrs["error"]
        frames = f["camera/frames"][:]
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
        index = f["camera/exposure_index"][:]
    if ended_early:
        assert 0 < frames.shape[0] < frames_run
    else:  # the frames went to the disk, the last tags could not
        assert frames.shape[0] == frames_run and t.shape[0] < 12 * 2**20 // 12
    # never silent zeros: every stored frame is a real readout (bias ~200 ADU on every pixel)
    assert frames.reshape(frames.shape[0], -1).min(axis=1).min() > 100
    assert t.shape == ch.shape and t.shape[0] > 1000 and np.all(np.diff(t) >= 0)
    np.testing.assert_array_equal(index, np.arange(frames.shape[0]))
    assert main(["info", str(out)]) == 0


def test_a_full_disk_ends_the_run_failed_with_the_data_intact(tmp_path: Path,
                                                              small_disk: Path) -> None:
    # the free-space check assumes no APD light, so the run starts and then fills the disk
    config = config_file(tmp_path, **{"expected_apd_rate_cps = 50000.0":
                                      "expected_apd_rate_cps = 0.0"})
    out = small_disk / "full.h5"
    result = cli("run", "--config", str(config), "--frames", "200", "--out", str(out))
    _check_failed_write(out, result, "the disk is full")
    assert (small_disk / "full.log").exists()


@pytest.mark.parametrize("last_flush_only", [False, True], ids=["during", "at-the-end"])
def test_a_disk_that_fills_ends_the_run_failed_with_the_data_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        last_flush_only: bool) -> None:
    """The tmpfs case on every machine: the file system reports a 12 MiB disk holding only the
    files of the run's folder. The disk fills during the run, or only with the tags still
    queued when the run ends (a run shorter than a flush interval): failed too, never
    ``complete`` over a file that lacks them."""
    if last_flush_only:
        monkeypatch.setattr(writer_module, "FLUSH_INTERVAL_S", 1e9)
        monkeypatch.setattr(writer_module, "TAG_BUFFER_LIMIT", 10**9)
    frames = 40 if last_flush_only else 200
    config = config_file(tmp_path, **{"expected_apd_rate_cps = 50000.0":
                                      "expected_apd_rate_cps = 0.0"})
    folder = tmp_path / "disk"
    folder.mkdir()
    out = folder / "full.h5"
    real_statvfs = os.statvfs
    disk_bytes = 12 << 20

    def small_disk_statvfs(path: str | os.PathLike[str]) -> os.statvfs_result:
        stat = real_statvfs(path)
        if Path(path) != folder:
            return stat
        used = sum(p.stat().st_size for p in folder.iterdir())
        free = max(0, disk_bytes - used) // stat.f_frsize
        return os.statvfs_result((stat.f_bsize, stat.f_frsize, disk_bytes // stat.f_frsize,
                                  free, free, *tuple(stat)[5:]))

    monkeypatch.setattr(os, "statvfs", small_disk_statvfs)
    code = main(["run", "--config", str(config), "--frames", str(frames), "--out", str(out)])
    stderr = capsys.readouterr().err
    _check_failed_write(out, subprocess.CompletedProcess([], code, "", stderr),
                        "the disk is full", frames, ended_early=not last_flush_only)


def test_a_write_failure_from_the_file_size_limit_ends_the_run_failed(tmp_path: Path) -> None:
    config = config_file(tmp_path, **{"expected_apd_rate_cps = 50000.0":
                                      "expected_apd_rate_cps = 0.0"})
    out = tmp_path / "limited.h5"
    result = cli("run", "--config", str(config), "--frames", "200", "--out", str(out),
                 preexec_fn=_file_size_limit(12_000_000))
    _check_failed_write(out, result, "the file size limit of the process is reached")


def test_a_run_that_cannot_fit_is_refused_before_it_starts(tmp_path: Path) -> None:
    out = tmp_path / "big.h5"
    result = cli("run", "--frames", "400", "--out", str(out),
                 preexec_fn=_file_size_limit(40_000_000))
    assert result.returncode == 2, result.stderr
    lines = messages(result.stderr)
    assert len(lines) == 1 and "not enough room for the run (400 frames" in lines[0]
    assert not out.exists() and not Path(f"{out}.lock").exists()


# -- damaged files --------------------------------------------------------------------------


@pytest.mark.parametrize("marked", [False, True], ids=["finished", "open-for-write"])
@pytest.mark.parametrize("share", [0.003, 0.4, 0.97])
def test_truncated_files_fail_fast_in_info(finished_file: Path, tmp_path: Path, share: float,
                                           marked: bool) -> None:
    damaged = tmp_path / "damaged.h5"
    shutil.copy(finished_file, damaged)
    if marked:
        set_write_mark(damaged)
        with pytest.raises(OSError, match="already open for write"):
            h5py.File(damaged, "r")
    size = damaged.stat().st_size
    os.truncate(damaged, int(size * share))
    result = cli("info", str(damaged), timeout=READER_TIMEOUT_S)
    assert result.returncode == 2
    lines = messages(result.stderr)
    assert len(lines) == 1 and f"truncated ({int(size * share)} of {size} bytes)" in lines[0]


@pytest.mark.parametrize("share", [0.02, 0.9])
def test_truncated_files_fail_fast_in_analyze(finished_file: Path, tmp_path: Path,
                                              share: float) -> None:
    damaged = tmp_path / "damaged.h5"
    shutil.copy(finished_file, damaged)
    set_write_mark(damaged)
    os.truncate(damaged, int(damaged.stat().st_size * share))
    result = cli("analyze", str(damaged), "--no-figures", timeout=READER_TIMEOUT_S)
    assert result.returncode != 0
    lines = messages(result.stderr)
    assert len(lines) == 1 and "is truncated" in lines[0], result.stderr


# -- killed writers -------------------------------------------------------------------------


def _paced_run(tmp_path: Path, out: Path, frames: int = 60) -> subprocess.Popen[str]:
    config = config_file(tmp_path, "paced.toml", **{'speed = "max"': "speed = 4.0"})
    return subprocess.Popen([*CLI, "run", "--config", str(config), "--frames", str(frames),
                             "--exposure", "0.25", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_data(out: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.stat().st_size > 100_000:
            return
        time.sleep(0.1)
    raise AssertionError(f"the run never wrote its file: {proc.poll()}")


def _repaired_opens_plainly(out: Path) -> tuple[str, int]:
    """Status and frames of a killed writer's file after ``cryoscope repair``."""
    with open_h5(out) as f:  # before the repair: SWMR read mode
        frames = f["camera/frames"].shape[0]
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(out, "r")
    result = cli("repair", str(out))
    assert result.returncode == 0 and "cleared the writer's open-for-write mark" in result.stdout
    with h5py.File(out, "r") as f:
        assert f["camera/frames"].shape[0] == frames
        assert f["camera/exposure_index"].shape[0] >= frames
        t = f["tags/timestamp_ps"][:]
        assert np.all(np.diff(t) >= 0)
        return str(f.attrs["status"]), frames


def test_kill_9_at_random_moments_then_repair_opens_plainly(tmp_path: Path) -> None:
    rng = random.Random(13)
    for k in range(3):
        out = tmp_path / f"killed{k}.h5"
        proc = _paced_run(tmp_path, out)
        try:
            _wait_for_data(out, proc)
            time.sleep(rng.uniform(0.2, 3.0))
            proc.kill()
        finally:
            proc.communicate(timeout=60)
        status, frames = _repaired_opens_plainly(out)
        assert status == "failed" and frames >= 1
        meas = open_measurement(out)
        assert meas.status == "failed" and meas.error == WRITER_DIED
        assert not Path(f"{out}.lock").exists()


_KILL_IN_FINISH = """
import os, signal, sys
import h5py
from cryoscope.datafile import writer
point = sys.argv[1]
real_set_attrs, real_close, real_flush = writer._set_attrs, h5py.File.close, \\
    writer.MeasurementWriter.flush
state = {"finishing": False}
def die(): os.kill(os.getpid(), signal.SIGKILL)
def set_attrs(node, values):
    real_set_attrs(node, values)
    if point == "status" and "finished" in values:
        die()
def close(self):
    if point == "close" and state["finishing"]:
        die()
    real_close(self)
def finish(self, *a, **k):
    state["finishing"] = True
    if point == "start":
        die()
    return real_finish(self, *a, **k)
real_finish = writer.MeasurementWriter.finish
writer._set_attrs = set_attrs
h5py.File.close = close
writer.MeasurementWriter.finish = finish
from cryoscope.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("point", "status"), [("start", "failed"), ("status", "failed"),
                                               ("close", "complete")])
def test_kill_9_during_the_finish_leaves_a_file_that_opens(tmp_path: Path, point: str,
                                                            status: str) -> None:
    out = tmp_path / "m.h5"
    proc = subprocess.run([sys.executable, "-c", _KILL_IN_FINISH, point, "run", "--frames", "6",
                           "--exposure", "0.25", "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    recorded, frames = _repaired_opens_plainly(out)
    # a status that reached the disk is kept; killed before that, repair records the death
    assert recorded == status
    # killed before the finish' flush: what was queued since the last flush (< 1 s) is lost
    assert frames == 6 if point != "start" else frames <= 6


def test_repair_refuses_a_file_a_live_run_holds(tmp_path: Path) -> None:
    out = tmp_path / "live.h5"
    proc = _paced_run(tmp_path, out, frames=200)
    try:
        _wait_for_data(out, proc)
        result = cli("repair", str(out))
        assert result.returncode == 1 and "being written by a live run" in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "aborted"


# -- a second run on a live path ------------------------------------------------------------


def test_a_second_run_on_a_live_path_is_refused_and_the_first_completes(tmp_path: Path) -> None:
    out = tmp_path / "first.h5"
    first = _paced_run(tmp_path, out, frames=300)
    try:
        _wait_for_data(out, first)
        plain = cli("run", "--frames", "2", "--out", str(out))
        forced = cli("run", "--frames", "2", "--out", str(out), "--overwrite")
    finally:
        _, stderr = first.communicate(timeout=300)
    assert plain.returncode == 2 and "output file exists" in plain.stderr
    assert forced.returncode == 2 and "being written by a live run" in forced.stderr
    assert first.returncode == 0, stderr
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["camera/frames"].shape[0] == 300
        assert int(np.sum(f["tags/channel"][:] == 3)) == 300
    assert not list(tmp_path.glob(".first.h5.*.partial"))


# -- signals --------------------------------------------------------------------------------


@pytest.mark.parametrize(("signals", "name", "code"), [
    ((signal.SIGTERM,), "SIGTERM", 128 + signal.SIGTERM),
    ((signal.SIGHUP,), "SIGHUP", 128 + signal.SIGHUP),
    ((signal.SIGINT, signal.SIGINT, signal.SIGINT), "Ctrl-C", 130),
])
def test_every_signal_ends_with_the_status_recorded(tmp_path: Path, signals: tuple[int, ...],
                                                    name: str, code: int) -> None:
    out = tmp_path / "s.h5"
    proc = _paced_run(tmp_path, out, frames=200)
    try:
        _wait_for_data(out, proc)
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.02)
    finally:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and len(messages(stderr)) <= len(signals) + 1
    with h5py.File(out, "r") as f:  # plain open: the writer closed the file
        assert f.attrs["status"] == "aborted"
        assert f.attrs["error"] == f"interrupted ({name})"
        assert 0 < f["camera/frames"].shape[0] < 200


@pytest.mark.parametrize("delay_s", [0.0, 0.1, 0.3])
def test_ctrl_c_during_start_up_is_one_line(tmp_path: Path, delay_s: float) -> None:
    """Ctrl-C once the output is claimed: while the rig opens, homes and the run prepares."""
    out = tmp_path / "early.h5"
    proc = _paced_run(tmp_path, out, frames=40)
    deadline = time.monotonic() + 60
    while not Path(f"{out}.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert len(messages(stderr)) == 1, stderr
    if out.exists():  # the run had begun: it recorded how it ended
        with h5py.File(out, "r") as f:
            assert f.attrs["status"] == "aborted"
    assert not Path(f"{out}.lock").exists()


@pytest.mark.parametrize("frames", [1, 26, 51])
def test_any_number_of_frames_completes(tmp_path: Path, frames: int) -> None:
    out = tmp_path / "n.h5"
    assert main(["run", "--frames", str(frames), "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["camera/frames"].shape[0] == frames
        assert int(np.sum(f["tags/channel"][:] == -3)) == frames


# -- injected faults ------------------------------------------------------------------------

FAULT_AT_S = 3.0
#: instrument, kind: expected status, error (regular expression; "" none), event kinds
FAULTS = {
    ("camera", "error"): ("failed", r"^camera: acquisition error", ()),
    ("camera", "lost_frame"): ("complete", r"^$", ("lost_frame",)),
    ("camera", "stop_early"): ("failed", r"^camera: the series stopped after \d+ of 30 frames",
                               ()),
    ("stage", "stall"): ("failed", r"^stage: the move to 5.00 deg did not end in time .* the "
                                   r"stage stalled", ()),
    ("stage", "no_reply"): ("failed", r"^stage: no reply from the controller", ()),
    ("tagger", "disconnect"): ("failed", r"^tagger: USB connection lost", ()),
    ("tagger", "overflow"): ("complete", r"^$", ()),
    ("laser", "stop"): ("failed", r"^laser: no sync pulse for 2 s: the laser stopped emitting",
                        ()),
    ("cryostat", "warm_up"): ("failed", r"^cryostat: sample above the 10 K limit for 20 s",
                              ("interlock", "pause")),
    ("cryostat", "disconnect"): ("failed", r"^cryostat: network connection lost", ()),
}


@pytest.mark.parametrize(("instrument", "kind"), list(FAULTS))
def test_each_injected_fault_has_its_outcome(tmp_path: Path, instrument: str, kind: str) -> None:
    status, error, events = FAULTS[(instrument, kind)]
    config = config_file(
        tmp_path, extra=f'\n[[simulation.faults]]\ninstrument = "{instrument}"\nkind = "{kind}"'
                        f"\nat_s = {FAULT_AT_S}\n",
        **{"temperature_max_wait_s = 600.0": "temperature_max_wait_s = 20.0"})
    out = tmp_path / "fault.h5"
    result = cli("run", "--config", str(config), "--frames", "30", "--dwell", "2",
                 "--out", str(out))
    lines = messages(result.stderr)
    assert len(lines) <= 2 and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == (0 if status == "complete" else 1), result.stderr
    if status == "failed":
        assert lines[-1].startswith(f"cryoscope: run failed: {instrument}: ")
        assert f"(details: {out.with_suffix('.log')})" in lines[-1]
    log = out.with_suffix(".log").read_text()
    # the rest of the rig is made safe without a complaint; the failed instrument is not read
    # again, only asked once to stop (what it answers goes to the run log only)
    assert "could not make the" not in log and "while stopping" not in log
    assert "could not drain" not in log
    if status == "failed":
        assert "Traceback" in log  # the details are in the run log
    if (instrument, kind) in (("camera", "error"), ("stage", "no_reply")):
        assert log.count(f"the {instrument} failed: could not make it safe either") == 1
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == status
        assert re.search(error, f.attrs["error"]), f.attrs["error"]
        kinds = tuple(k.decode() for k in f["events/kind"][:])
        frames = f["camera/frames"].shape[0]
        exposure = f["camera/exposure_index"][:]
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
        tagger_events = f["tagger/event_type"][:]
    assert kinds[:len(events)] == events
    # the data before the fault is intact: every frame exposed before it, with its edges
    before = int(FAULT_AT_S // 0.502)
    assert frames >= before
    lost_in_burst = 1 if kind == "overflow" else 0  # an exposure's end may fall in the burst
    assert np.all(np.diff(t) >= 0) and int(np.sum(ch == -3)) >= frames - lost_in_burst
    assert np.all(np.diff(exposure) > 0)
    if kind == "lost_frame":
        assert frames == 29 and before in open_measurement(out).lost_frames.tolist()
    if kind == "overflow":
        meas = open_measurement(out)
        assert meas.overflows_ps.shape == (1, 2) and meas.missed_apd > 0
        assert list(tagger_events[[0, -1]]) == [2, 3]


def test_an_overflow_is_named_by_info_and_analyze_and_the_rate_counts_missed_clicks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fault = '\n[[simulation.faults]]\ninstrument = "tagger"\nkind = "overflow"\nat_s = 4.0\n'
    clean, hit = tmp_path / "clean.h5", tmp_path / "overflow.h5"
    rates = []
    for out, extra in ((clean, ""), (hit, fault)):
        config = config_file(tmp_path, f"{out.stem}.toml", extra=extra)
        assert main(["run", "--config", str(config), "--frames", "20", "--seed", "3",
                     "--out", str(out)]) == 0
        summary = capsys.readouterr().out
        rates.append(float(re.search(r"count rate\s+([\d.]+) kcps", summary).group(1)))  # type: ignore[union-attr]
    meas = open_measurement(hit)
    (start, stop), = meas.overflows_ps.tolist()
    with h5py.File(hit, "r") as f:
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    assert not np.any((t >= start) & (t < stop))  # every tag of the burst was lost
    assert (stop - start) == pytest.approx(0.5e12, rel=0.01)
    recorded = int(np.sum(ch == meas.apd_channel))
    with h5py.File(clean, "r") as f:  # the same seed: the same clicks, none lost
        t_clean = f["tags/timestamp_ps"][:]
        ch_clean = f["tags/channel"][:]
    in_burst = (t_clean >= start) & (t_clean < stop)
    assert meas.missed_apd == int(np.sum(in_burst & (ch_clean == meas.apd_channel))) > 0
    assert sum(meas.missed_events.values()) == int(np.sum(in_burst))
    assert recorded + meas.missed_apd == int(np.sum(ch_clean == meas.apd_channel))
    # the clicks missed in the overflow count in the rate: it stays the particle's
    assert rates[1] == pytest.approx(rates[0], rel=0.02)
    assert recorded / meas.duration_s / 1e3 < 0.99 * rates[1]
    assert main(["info", str(hit)]) == 0
    info = capsys.readouterr().out
    assert re.search(r"overflows\s+1 of the time tagger \(tags lost at [\d.]+-[\d.]+ s of the "
                     rf"stream\): \d+ tags missed, {meas.missed_apd} of them APD clicks", info)
    out_dir = tmp_path / "analysis"
    assert main(["analyze", str(hit), "--out", str(out_dir), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert f"tagger overflows: 1 (tagger time {start / 1e12:.3f}-{stop / 1e12:.3f} s)" in printed
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["tagger_overflows"] == {"intervals_ps": [[start, stop]],
                                           "missed_events": sum(meas.missed_events.values()),
                                           "missed_apd": meas.missed_apd}
    # the analysis leaves the burst out and counts the missed clicks in its rate
    result = analyze_file(hit)
    clean_result = analyze_file(clean)
    in_burst_bins = ((result.trace.start_s * 1e12 >= start)
                     & (result.trace.start_s * 1e12 + result.trace.bin_s * 1e12 <= stop))
    assert in_burst_bins.sum() >= 40 and result.trace.counts[in_burst_bins].sum() == 0
    assert result.count_rate_cps == pytest.approx(clean_result.count_rate_cps, rel=0.02)
    assert summary["count_rate_cps"] == pytest.approx(clean_result.count_rate_cps, rel=0.02)
    # the burst is no dark level: the intensity levels are those of the clean run
    assert result.levels is not None and clean_result.levels is not None
    assert result.levels.rate_cps.size == clean_result.levels.rate_cps.size
    assert result.levels.rate_cps.max() == pytest.approx(clean_result.levels.rate_cps.max(),
                                                         rel=0.02)


def test_a_bad_fault_is_refused_at_config_check(tmp_path: Path) -> None:
    config = config_file(tmp_path, extra='\n[[simulation.faults]]\ninstrument = "camera"\n'
                                          'kind = "stall"\nat_s = 1.0\n')
    result = cli("config", "check", str(config))
    assert result.returncode == 2
    assert messages(result.stderr) == [
        f"cryoscope: error: {config}: invalid value for 'simulation.faults.kind': no camera "
        "fault 'stall' (kinds: error, lost_frame, stop_early) (got 'stall')"]


def test_an_interlock_that_would_hold_every_run_is_refused(tmp_path: Path) -> None:
    config = config_file(tmp_path, **{"target_temperature_k = 4.0 ":
                                      "target_temperature_k = 20.0"})
    result = cli("config", "check", str(config))
    assert result.returncode == 2
    lines = messages(result.stderr)
    assert len(lines) == 1 and "'interlocks.sample_temperature_max_k'" in lines[0]
    assert "must be above cryostat.target_temperature_k (20 K)" in lines[0]


# -- interlocks -----------------------------------------------------------------------------


def test_the_temperature_interlock_pauses_until_the_sample_is_cold_again(tmp_path: Path) -> None:
    config = small_config(frames=30, exposure_s=0.25)
    config = config.with_overrides("interlocks", sample_temperature_max_k=6.0,
                                   temperature_settle_s=5.0)
    plan = make_plan("time_series", config)
    states: list[RunState] = []
    with open_rig(config) as rig:
        rig.cryostat.set_setpoint_k(20.0)  # the sample starts to warm up

        def cool_again(event: RunEvent) -> None:
            if isinstance(event, StateChanged):
                states.append(event.state)
                if event.state is RunState.PAUSED:
                    rig.cryostat.set_setpoint_k(4.0)

        result = run_plan(rig, plan, tmp_path / "t.h5", listeners=[cool_again])
    assert result.state is RunState.COMPLETE and result.frames == 30
    assert RunState.PAUSED in states
    meas = open_measurement(tmp_path / "t.h5")
    kinds = [e.kind for e in meas.events]
    assert kinds == ["interlock", "pause", "interlock", "resume"]
    paused, released = meas.events[0], meas.events[2]
    assert "above the 6 K limit: paused" in paused.message
    assert "for 5 s: resumed" in released.message
    with h5py.File(tmp_path / "t.h5", "r") as f:
        log_t = f["cryostat/log_time_s"][:]
        temperature = f["cryostat/sample_temperature_k"][:]
    during = (log_t > paused.time_s) & (log_t < meas.events[3].time_s)
    assert temperature[during].max() > 6.0
    # settled: at or below the limit for the settle time before resuming
    settling = (log_t >= released.time_s - 5.0) & (log_t <= released.time_s)
    assert np.all(temperature[settling] <= 6.0)
    assert meas.pauses_ps.shape == (1, 2)


@pytest.mark.parametrize("action", ["lower_gain", "stop"])
def test_the_saturation_interlock_protects_the_emccd(tmp_path: Path, action: str) -> None:
    # the default particle peaks near 10 000 ADU at EM gain 100: call 9 000 "near saturation"
    config = small_config(frames=12, exposure_s=0.5)
    config = config.with_overrides("interlocks", saturation_adu=9000, saturation_em_gain=60,
                                   saturation_action=action)
    out = tmp_path / "sat.h5"
    with open_rig(config) as rig:
        result = run_plan(rig, make_plan("time_series", config), out)
        gain = rig.camera.em_gain()
    meas = open_measurement(out)
    with h5py.File(out, "r") as f:
        frames = f["camera/frames"][:]
    peaks = frames.reshape(frames.shape[0], -1).max(axis=1)
    first = int(np.flatnonzero(peaks >= 9000)[0])
    interlock = [e for e in meas.events if e.kind == "interlock"]
    assert len(interlock) == 1
    assert f"reached {peaks[first]} ADU (limit 9000) at EM gain 100" in interlock[0].message
    if action == "stop":
        assert result.state is RunState.ABORTED and meas.status == "aborted"
        assert meas.error.startswith("camera: the frame of exposure")
        assert "series stopped by the saturation interlock" in meas.error
        assert frames.shape[0] < 12
    else:
        assert result.state is RunState.COMPLETE and frames.shape[0] == 12 and gain == 50
        assert [e.message for e in meas.events if e.kind == "em_gain"] == ["EM gain 100 -> 50"]
        resumed = next(e for e in meas.events if e.kind == "resume")
        later = meas.exposure_index >= int(resumed.message.split()[-1])
        # at half the gain the signal above the bias halves
        ratio = (np.median(peaks[later]) - 200) / (np.median(peaks[:first + 1]) - 200)
        assert ratio == pytest.approx(0.5, abs=0.12)
        assert peaks[later].max() < 9000


def test_run_plan_refuses_a_run_that_cannot_fit(tmp_path: Path) -> None:
    config = small_config(frames=1000).with_overrides("storage", expected_apd_rate_cps=1e8)
    control = RunControl()
    with open_rig(config) as rig, pytest.raises(OSError, match="not enough room for the run"):
        run_plan(rig, make_plan("time_series", config), tmp_path / "huge.h5", control=control)
    assert not (tmp_path / "huge.h5").exists()
