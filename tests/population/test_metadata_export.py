"""Per-measurement metadata (config, CLI, API → file → analysis → summary), compressed storage,
and the Photon-HDF5 export validated and read back with phconvert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope import __version__, api
from cryoscope.analysis import analyze_file, collect_photons, open_measurement, write_summary
from cryoscope.cli import main
from cryoscope.config import ConfigError, load_config
from cryoscope.export import MARKERS, NANOTIME_UNKNOWN
from tests.analysis.simfiles import FAST_PLAN, emitter

METADATA = {"sample": "CdSe/CdS batch 7", "sample_type": "molecule", "particle": "P12",
            "position": "x=120.5 y=33.0 um", "operator": "A. Physicist", "notes": "after anneal"}


@pytest.fixture(scope="module")
def dimer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame dimer measurement with metadata, from the API."""
    path = tmp_path_factory.mktemp("meta") / "dimer.h5"
    cfg = load_config().with_overrides("sample", emitters=[
        emitter(zpl_ev=2.15, dipole_angle_deg=20.0), emitter(zpl_ev=2.17, dipole_angle_deg=80.0,
                                                             branching=0.6)])
    result = api.measure(path, cfg, frames=24, measurement=METADATA, **FAST_PLAN)
    assert str(result.state).endswith("complete")
    return path


def test_metadata_reaches_the_file_the_analysis_and_the_summary(dimer_file: Path,
                                                                tmp_path: Path) -> None:
    with h5py.File(dimer_file, "r") as f:
        assert {k: f["measurement"].attrs[k] for k in METADATA} == METADATA
    assert open_measurement(dimer_file).metadata == METADATA
    result = analyze_file(dimer_file)
    summary = json.loads(write_summary(result, tmp_path).read_text())
    assert summary["measurement"] == METADATA
    provenance = summary["provenance"]
    assert provenance["software_version"] == __version__
    assert provenance["parameters"]["bin_s"] == 0.01
    assert provenance["parameters"]["jump_mev"] == 2.0
    assert {"min_decay_photons", "min_line_fraction", "decay_bin_ps"} <= set(
        provenance["parameters"])
    # ZPL intensities of each state: the two centers in the ratio of their branching.
    (state,) = summary["states"]
    ratio = dict(zip(np.round(state["zpl_ev"], 2), state["zpl_photons"], strict=True))
    assert ratio[2.17] / ratio[2.15] == pytest.approx(0.6, rel=0.1)


def test_run_options_write_metadata_and_info_shows_it(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.h5"
    assert main(["run", "--frames", "4", "--exposure", "0.2", "--out", str(out),
                 "--sample", METADATA["sample"], "--sample-type", "molecule", "--particle", "P12",
                 "--position", METADATA["position"], "--operator", METADATA["operator"],
                 "--notes", METADATA["notes"]]) == 0
    capsys.readouterr()
    with h5py.File(out, "r") as f:
        assert dict(f["measurement"].attrs) == METADATA
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert re.search(r"^sample_type\s+molecule$", info, re.M)
    assert re.search(r"^position\s+x=120.5 y=33.0 um$", info, re.M)
    assert re.search(r"^storage\s+uncompressed", info, re.M)
    # A bad sample type is a one-line usage error and writes nothing.
    with pytest.raises(SystemExit) as exc:
        main(["run", "--frames", "4", "--out", str(tmp_path / "x.h5"), "--sample-type", "dimer"])
    assert exc.value.code == 2
    assert not (tmp_path / "x.h5").exists()


def test_measurement_section_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"measurement.sample_type"):
        load_config().with_overrides("measurement", sample_type="trimer")
    with pytest.raises(ConfigError, match=r"unknown key 'measurement.colour'"):
        load_config().with_overrides("measurement", colour="red")
    with pytest.raises(ConfigError, match=r"storage.compression"):
        load_config().with_overrides("storage", compression="zstd")


def test_compressed_storage_holds_the_same_data(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config().with_overrides("simulation", seed=3)
    plain, packed = tmp_path / "plain.h5", tmp_path / "gzip.h5"
    api.measure(plain, cfg, frames=12)
    api.measure(packed, cfg.with_overrides("storage", compression="gzip"), frames=12)
    with h5py.File(plain, "r") as a, h5py.File(packed, "r") as b:
        for name in ("tags/timestamp_ps", "tags/channel", "camera/frames"):
            assert a[name].compression is None
            assert b[name].compression == "gzip" and b[name].shuffle
            np.testing.assert_array_equal(a[name][:], b[name][:])
        # the bulk data stored: a third or less (the file's size also holds the space HDF5 left
        # behind when an SWMR flush rewrote a partly filled compressed chunk, which depends on
        # how often the writer flushed, i.e. on wall time)
        stored = [sum(f[n].id.get_storage_size() for n in ("tags/timestamp_ps", "tags/channel",
                                                          "camera/frames")) for f in (a, b)]
    assert stored[1] < stored[0] / 3
    assert packed.stat().st_size < plain.stat().st_size / 2
    assert collect_photons(packed).n == collect_photons(plain).n
    assert main(["info", str(packed)]) == 0
    assert re.search(r"^storage\s+gzip", capsys.readouterr().out, re.M)


def test_photon_hdf5_export_is_valid_and_holds_every_photon(
        dimer_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import phconvert

    out = tmp_path / "dimer.photon.h5"
    assert main(["export", str(dimer_file), "--format", "photon-hdf5", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out

    with h5py.File(dimer_file, "r") as f:
        ch = f["channels"].attrs
        channel = f["tags/channel"][:]
        apd_tags = int(np.count_nonzero(channel == ch["apd"]))
        frames = f["camera/frames"].shape[0]
        moves = f["stage/target_deg"].shape[0]
        spectra = f["camera/frames"][:]
    photons = collect_photons(dimer_file)
    assert photons.n == apd_tags

    h5 = phconvert.hdf5.load_photon_hdf5(str(out), warnings=False)  # validates it
    try:
        root = h5.root
        det = root.photon_data.detectors.read()
        ts = root.photon_data.timestamps.read()
        nano = root.photon_data.nanotimes.read()
        assert int(np.count_nonzero(det == 0)) == apd_tags
        assert np.all(np.diff(ts) >= 0)
        counts = {name: int(np.count_nonzero(det == i)) for name, i in MARKERS.items()}
        assert counts == {"exposure_start": frames, "exposure_end": frames,
                          "move_start": moves, "move_end": moves}
        unit = float(root.photon_data.nanotimes_specs.tcspc_unit.read())
        known = photons.delay_ps >= 0
        expected = np.where(known, photons.delay_ps // round(unit * 1e12), NANOTIME_UNKNOWN)
        np.testing.assert_array_equal(nano[det == 0], expected)
        np.testing.assert_array_equal(ts[det == 0], photons.time_ps)
        rate = float(root.photon_data.measurement_specs.laser_repetition_rate.read())
        assert rate == pytest.approx(1e12 / photons.laser_period_ps)
        assert root.sample.sample_name.read().decode() == "CdSe/CdS batch 7 P12"
        assert root.identity.author.read().decode() == "A. Physicist"
        user = root.user.cryoscope
        np.testing.assert_array_equal(user.spectra_adu.read(), spectra[:, [0, 1], :])
        assert user.frame_waveplate_deg.read().shape == (frames,)
        assert json.loads(user.measurement.read().decode()) == METADATA
    finally:
        h5.close()

    assert main(["export", str(dimer_file), "--format", "photon-hdf5", "--out", str(out)]) == 2
    assert "output file exists" in capsys.readouterr().err
