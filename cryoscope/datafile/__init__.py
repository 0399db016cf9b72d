"""The measurement file, one owner: schema, writer, reader and frame timing
(``docs/file-format.md``)."""

from cryoscope.datafile.reader import (
    DEFAULT_TAG_CHUNK,
    Measurement,
    MeasurementError,
    RunEvent,
    SimulationTruth,
    iter_frame_blocks,
    iter_tag_chunks,
    open_h5,
    open_measurement,
    read_frames,
    read_timing,
)
from cryoscope.datafile.schema import FORMAT, FORMAT_VERSION
from cryoscope.datafile.timing import (
    OPEN_PS,
    EdgePairs,
    FrameTiming,
    StageTiming,
    frame_timing,
    in_intervals,
    pair_edges,
    rest_angles,
    stage_angle_at,
)
from cryoscope.datafile.writer import (
    MeasurementWriter,
    OutputBusyError,
    OutputClaim,
    OutputError,
    OutputExistsError,
    RunMetadata,
    now_iso,
)

__all__ = [
    "DEFAULT_TAG_CHUNK",
    "FORMAT",
    "FORMAT_VERSION",
    "OPEN_PS",
    "EdgePairs",
    "FrameTiming",
    "Measurement",
    "MeasurementError",
    "MeasurementWriter",
    "OutputBusyError",
    "OutputClaim",
    "OutputError",
    "OutputExistsError",
    "RunEvent",
    "RunMetadata",
    "SimulationTruth",
    "StageTiming",
    "frame_timing",
    "in_intervals",
    "iter_frame_blocks",
    "iter_tag_chunks",
    "now_iso",
    "open_h5",
    "open_measurement",
    "pair_edges",
    "read_frames",
    "read_timing",
    "rest_angles",
    "stage_angle_at",
]
