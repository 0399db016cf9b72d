"""The measurement file's identity and version (``docs/file-format.md`` describes every node)."""

FORMAT = "cryoscope"
#: 2: ``/camera/exposure_index``, ``/camera/lost_*``, ``/events``; readers still read version 1.
FORMAT_VERSION = 2
