"""The results dock and the night's runs (pytest-qt, offscreen): what they show of an analysis
summary (``docs/summary-format.md``), readable and unclipped in the ~400 px left dock."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from PyQt6.QtWidgets import QTreeWidgetItem

from gui.widgets import (
    RegionsPanel,
    ResultsView,
    RunEntry,
    RunsTable,
    analysis_regions,
    fmt_pm,
    key_line,
)

#: The left dock's width (px) in the window's default layout.
DOCK_WIDTH = 400


def line(zpl_ev: float, p: float, p_err: float | None, phi: float, phi_err: float | None,
         center: int = 0, charge: str = "X", uncertain: tuple[str, ...] = ()
         ) -> dict[str, Any]:
    return {"zpl_ev": zpl_ev, "zpl_err_ev": 2e-6, "fwhm_mev": 0.45,
            "replica_weights": [0.13, 0.08], "states": [0], "polarization_degree": p,
            "polarization_degree_err": p_err, "dipole_angle_deg": phi,
            "dipole_angle_err_deg": phi_err, "gain_ratio_vh": 1.1,
            "window_ev": [zpl_ev - 0.0008, zpl_ev + 0.0008], "center": center,
            "charge": charge, "uncertain": list(uncertain)}


#: A summary like the audit's: a degenerate fit with a zero uncertainty (the old key line), the
#: well-measured line, a fit on the boundary; two centers, a simultaneous jump.
SUMMARY: dict[str, Any] = {
    "format": "cryoscope.summary", "version": 1, "file": "/data/particle-07.h5",
    "status": "complete", "frames": 400, "photons": 3111295, "count_rate_cps": 15400.0,
    "lines": [
        line(2.1350, 0.008, 0.0, 172.6, 0.0, center=1, charge="X*"),
        line(2.1500, 0.7063, 0.0048, 29.3027, 0.4937),
        line(2.1620, 1.0, None, 120.1, None, center=1,
             uncertain=("p = 1.00 at the boundary", "1500 photons")),
    ],
    "states": [
        {"id": 0, "frames": 279, "fraction": 0.6975, "photons": 2618050,
         "count_rate_cps": 18767.4, "lifetimes_ns": [1.44756, 99.8342],
         "lifetimes_err_ns": [0.00237, 3.1234], "lifetime_weights": [0.327, 0.673],
         "zpl_ev": [2.15, 2.162], "zpl_photons": [1.7e6, 2e3], "configuration": ["X", "X"]},
        {"id": 1, "frames": 121, "fraction": 0.3025, "photons": 492000,
         "count_rate_cps": 7700.0, "lifetimes_ns": [], "lifetimes_err_ns": [],
         "lifetime_weights": [], "zpl_ev": [2.135], "zpl_photons": [4e5],
         "configuration": ["dark", "X*"]},
    ],
    "centers": [
        {"id": 0, "zpl_ev": 2.15, "zpl_spread_mev": 0.41, "dipole_angle_deg": 30.1186,
         "dipole_angle_err_deg": 0.0763, "polarization_degree": 0.6988, "charged_zpl_ev": None,
         "trion_shift_mev": None, "lines": [1], "replica_shifts_mev": [27.0062, 36.9919],
         "replica_shifts_err_mev": [0.0825, 0.1017], "region_ev": [2.148, 2.152]},
        {"id": 1, "zpl_ev": 2.162, "zpl_spread_mev": 0.2, "dipole_angle_deg": 120.0,
         "dipole_angle_err_deg": None, "polarization_degree": 1.0, "charged_zpl_ev": 2.135,
         "trion_shift_mev": -27.0, "lines": [0, 2], "replica_shifts_mev": [27.1, 37.2],
         "replica_shifts_err_mev": [0.3, 0.4], "region_ev": [2.133, 2.164]},
    ],
    "jumps": [
        {"frame": 109, "time_s": 54.718, "centers": [0, 1], "shifts_mev": [-14.9964, 5.02],
         "kind": "charging+surface_charge"},
    ],
}


def items(tree_item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    out = []
    for k in range(tree_item.childCount()):
        child = tree_item.child(k)
        assert child is not None
        out += [child, *items(child)]
    return out


def rows(view: ResultsView) -> list[QTreeWidgetItem]:
    root = view.tree.invisibleRootItem()
    assert root is not None
    return items(root)


def group(view: ResultsView, title: str) -> QTreeWidgetItem:
    found = [it for it in rows(view) if it.parent() is None and it.text(0).startswith(title)]
    assert len(found) == 1, [it.text(0) for it in rows(view) if it.parent() is None]
    return found[0]


def child(item: QTreeWidgetItem, name: str) -> str:
    values = [item.child(k).text(1) for k in range(item.childCount())  # type: ignore[union-attr]
              if item.child(k).text(0) == name]  # type: ignore[union-attr]
    assert len(values) == 1, (name, values)
    return values[0]


def test_uncertainties_are_rounded_to_their_precision_and_missing_ones_said() -> None:
    assert fmt_pm(0.70634, 0.00481) == "0.706 ± 0.005"
    assert fmt_pm(29.9027, 0.1537, "°") == "29.90 ± 0.15°"
    assert fmt_pm(100.094, 0.0909, " ns") == "100.09 ± 0.09 ns"
    assert fmt_pm(99.834, 3.1234, " ns") == "99.8 ± 3.1 ns"
    assert fmt_pm(1234.4, 56.0, " ADU") == "1234 ± 56 ADU"  # no rounding above the units
    # zero, NaN and missing uncertainties are none: not "± 0.0"
    assert fmt_pm(0.008, 0.0) == "0.008 (no σ)"
    assert fmt_pm(172.6, float("nan"), "°", 1) == "172.6° (no σ)"
    assert fmt_pm(1.0, None) == "1.000 (no σ)"
    assert fmt_pm(None, 0.1) == "—"


def test_the_key_line_has_a_determined_fit() -> None:
    # the audit's case: the degenerate line's ± 0.0 was taken as the best
    shown = key_line(SUMMARY)
    assert shown is SUMMARY["lines"][1]
    # a NaN uncertainty (a summary not through JSON) is none either
    with_nan = copy.deepcopy(SUMMARY)
    with_nan["lines"][0]["dipole_angle_err_deg"] = float("nan")
    assert key_line(with_nan) is with_nan["lines"][1]
    # a line the analysis flags as doubtful yields to a sound one, even if its σ_φ is smaller
    doubtful = copy.deepcopy(SUMMARY)
    doubtful["lines"][0].update(polarization_degree_err=0.01, dipole_angle_err_deg=0.2,
                                uncertain=["900 photons"])
    assert key_line(doubtful) is doubtful["lines"][1]
    none = copy.deepcopy(SUMMARY)
    del none["lines"][1]
    assert key_line(none) is None


def test_the_runs_table_shows_the_key_line_and_fits_the_dock_without_scrolling(
        qtbot: Any) -> None:
    runs = RunsTable()
    qtbot.addWidget(runs)
    runs.resize(DOCK_WIDTH, 250)
    runs.show()
    runs.add(RunEntry("particle-07", "/data/particle-07.h5", "complete", 400, 3111295))
    runs.add(RunEntry("particle-08-second-try", "/data/particle-08-second-try.h5", "aborted",
                      120, 900000))
    runs.set_summary("/data/particle-07.h5", SUMMARY)
    qtbot.wait(10)
    table = runs.table
    headers = [table.horizontalHeaderItem(c).text()  # type: ignore[union-attr]
               for c in range(table.columnCount())]
    cells = {h: table.item(0, c).text() for c, h in enumerate(headers)}  # type: ignore[union-attr]
    assert cells["status"] == "complete"
    assert cells["ZPL eV"] == "2.1500"
    assert cells["p"] == "0.71"
    assert cells["φ °"] == "29.3 ± 0.5"
    assert cells["τ ns"] == "1.45, 99.8"
    tip = table.item(0, 0).toolTip()  # type: ignore[union-attr]
    assert "400 frames" in tip and "15.4 kcps" in tip and "line 1" in tip
    assert table.item(1, 2).text() == "—"  # type: ignore[union-attr]
    # every column within the dock: no horizontal scrolling, every number whole
    header = table.horizontalHeader()
    assert header is not None
    assert header.length() <= table.viewport().width()  # type: ignore[union-attr]
    assert not table.horizontalScrollBar().isVisible()  # type: ignore[union-attr]
    metrics = table.fontMetrics()
    for col in range(1, table.columnCount()):
        for row in range(2):
            text = table.item(row, col).text()  # type: ignore[union-attr]
            assert metrics.horizontalAdvance(text) < header.sectionSize(col), (row, col, text)
        assert table.horizontalHeaderItem(col).toolTip()  # type: ignore[union-attr]


def test_results_are_labelled_with_units_and_uncertainties_and_not_clipped(
        qtbot: Any) -> None:
    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(DOCK_WIDTH, 700)
    view.show()
    view.show_summary(SUMMARY)
    view.tree.expandAll()
    qtbot.wait(10)
    line1 = next(it for it in rows(view) if it.text(0) == "line 1")
    assert line1.text(1) == "2.1500 eV (576.67 nm)"
    assert child(line1, "p") == "0.706 ± 0.005"
    assert child(line1, "φ") == "29.3 ± 0.5°"
    assert child(line1, "FWHM") == "0.45 meV"
    assert child(line1, "center") == "center 0"
    line0 = next(it for it in rows(view) if it.text(0) == "line 0")
    # without uncertainties p and φ were not determined: no numbers, and no g_V/g_H
    assert child(line0, "p") == "not determined" and child(line0, "φ") == "not determined"
    assert "g_V/g_H" not in [line0.child(k).text(0)  # type: ignore[union-attr]
                             for k in range(line0.childCount())]
    line2 = next(it for it in rows(view) if it.text(0) == "line 2")
    labels = [line2.child(k).text(0) for k in range(line2.childCount())]  # type: ignore[union-attr]
    texts = [line2.child(k).text(1) for k in range(line2.childCount())]  # type: ignore[union-attr]
    first = labels.index("doubtful")  # one label, a reason a row
    assert texts[first:] == ["p = 1.00 at the boundary", "1500 photons"]
    assert labels[first:] == ["doubtful", ""]
    state0 = next(it for it in rows(view) if it.text(0) == "state 0")
    assert child(state0, "τ1") == "1.4476 ± 0.0024 ns (33%)"
    assert child(state0, "τ2") == "99.8 ± 3.1 ns (67%)"
    assert child(state0, "count rate") == "18.8 kcps"
    state1 = next(it for it in rows(view) if it.text(0) == "state 1")
    assert child(state1, "configuration") == "center 0: dark, center 1: X*"
    assert child(state1, "τ") == "—"
    center0 = next(it for it in rows(view) if it.text(0) == "center 0")
    assert child(center0, "spectral diffusion") == "0.41 meV"
    assert child(center0, "φ") == "30.12 ± 0.08°"
    assert child(center0, "CdSe LO") == "27.01 ± 0.08 meV below"
    assert child(center0, "trion") == "never charged"
    center1 = next(it for it in rows(view) if it.text(0) == "center 1")
    assert child(center1, "trion") == "2.1350 eV (-27.0 meV)"
    assert child(center1, "lines") == "line 0, line 2"
    jumps = group(view, "jumps (1)")
    assert [jumps.child(k).text(1) for k in range(jumps.childCount())] == [  # type: ignore[union-attr]
        "center 0 charging -15.0 meV", "center 1 surface charge +5.0 meV"]
    # labels, not summary.json's keys
    assert not [it.text(0) for it in rows(view) if "_" in it.text(0) and it.text(0) != "g_V/g_H"]
    # nothing cut: every text within its column at the dock's width
    metrics = view.tree.fontMetrics()
    for it in rows(view):
        if it.parent() is None:
            continue  # group titles span both columns
        rect = view.tree.visualItemRect(it)
        assert rect.height() > 0, it.text(0)
        name_end = rect.left() + metrics.horizontalAdvance(it.text(0))
        assert name_end < view.tree.columnWidth(0), it.text(0)
        width = metrics.horizontalAdvance(it.text(1))
        assert width < view.tree.columnWidth(1) - 8, (it.text(0), it.text(1))
        assert it.toolTip(0) and it.text(1) in it.toolTip(1)


def test_lines_and_centers_have_one_name_in_results_and_regions(qtbot: Any) -> None:
    view = ResultsView()
    qtbot.addWidget(view)
    view.show_summary(SUMMARY)
    regions = RegionsPanel()
    qtbot.addWidget(regions)
    regions.set_analysis_regions(analysis_regions(SUMMARY))
    named = {it.text(0) for it in rows(view)
             if it.parent() in (group(view, "lines"), group(view, "centers"))}
    assert named == {"line 0", "line 1", "line 2", "center 0", "center 1"}
    assert {r.name for r in regions.regions} == named
    by_name = {r.name: r for r in regions.regions}
    assert by_name["center 1"].lo_ev == pytest.approx(2.133)
    assert by_name["line 1"].lo_ev == pytest.approx(2.1500 - 0.0008)
