"""Analysis of cryoscope measurement files: from time tags and frames to the paper's figures.

Array-level functions (usable live, e.g. by the GUI) and file-level entry points:

- :mod:`.photons` — per-photon delay, frame, waveplate angle, stage motion (streaming, numba)
- :mod:`.g2` — g²(τ) of two APDs, g²(0) (streaming, numba)
- :mod:`.trace`, :mod:`.changepoint` — intensity traces, blinking levels (Watkins & Yang)
- :mod:`.lifetime` — decay histograms, binned Poisson ML fits with IRF and pile-over
- :mod:`.flid` — fluorescence-lifetime–intensity distributions
- :mod:`.image` — image readout: V and H row bands binned into spectra
- :mod:`.spectra` — per-frame spectra, EMCCD noise, cosmic rays
- :mod:`.lines`, :mod:`.polarization` — line fits, p/φ/g fits
- :mod:`.tracking` — each center's peak per frame and its jumps (the figures' tracks)
- :mod:`.peaks`, :mod:`.centers`, :mod:`.configurations`, :mod:`.jumps` — the charging-state map:
  peaks per frame, emission centers and their lines, configurations per frame, classified jumps
- :mod:`.report`, :mod:`.summary`, :mod:`.figures`, :mod:`.mapping_figure`, :mod:`.cli` — the
  whole file
"""

import cryoscope.numba_cache  # noqa: F401  (first: a writable numba cache before numba loads)
from cryoscope.analysis.g2 import G2Correlator, G2Result, g2_from_photons
from cryoscope.analysis.lifetime import DecayFit, decay_histogram, fit_decay
from cryoscope.analysis.photons import PhotonTable, collect_photons
from cryoscope.analysis.polarization import PolarizationFit, fit_polarization
from cryoscope.analysis.report import AnalysisResult, analyze_file
from cryoscope.analysis.spectra import prepare_spectra
from cryoscope.analysis.summary import write_summary
from cryoscope.datafile import MeasurementError, open_measurement

__all__ = [
    "AnalysisResult",
    "DecayFit",
    "G2Correlator",
    "G2Result",
    "MeasurementError",
    "PhotonTable",
    "PolarizationFit",
    "analyze_file",
    "collect_photons",
    "decay_histogram",
    "fit_decay",
    "fit_polarization",
    "g2_from_photons",
    "open_measurement",
    "prepare_spectra",
    "write_summary",
]
