"""cryoscope: control and analysis of a cryogenic single-particle fluorescence microscope."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryoscope")
except PackageNotFoundError:
    __version__ = "0.0.0+unknown"
