"""The cryoscope desktop application (PyQt6 + pyqtgraph): ``cryoscope gui``.

It drives :mod:`cryoscope` and shows what it produces; measurement logic lives in the core
(:mod:`cryoscope.session`, :mod:`cryoscope.live`, the plans).
"""
