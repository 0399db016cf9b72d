"""A rig session: the rig owned by one worker thread, driven through typed commands.

Instruments are not thread-safe, so a :class:`RigSession` gives the rig to one thread and lets
every other thread (a GUI, a notebook) reach it only by queueing work. The package is split by
concern:

- :mod:`.core` — :class:`RigSession`: the worker thread, its queue, connection and state;
- :mod:`.commands` — typed commands (``SetLaserPower(300.0)``, ``MoveWaveplate(22.5)``, ...)
  that say what they do and do it on the worker thread;
- :mod:`.runs` — a plan run (:class:`RunRequest`: plan, file, the run's ``[measurement]``
  values) with stop, pause and resume from any thread;
- :mod:`.monitors` — what happens between commands: simulated time passing, count rates from a
  short tagger window per tick, alignment mode's camera;
- :mod:`.events` — everything published through the one callback (worker thread; it must
  return quickly: a GUI hands the event to its own event loop).

    session = RigSession(load_config(), on_event=print)
    session.connect().result()
    session.send(MoveWaveplate(22.5)).result()
    result = session.start_run("polarization_series", "particle.h5", frames=40,
                               measurement={"particle": "particle-07"}).result()
    session.close()

Commands return :class:`concurrent.futures.Future` objects; a failing command publishes a
:class:`CommandFailed` (its message is one line, fit for a user) and leaves the rig safe. During a
run, status polls are interleaved with the plan's loop (from its listener call, on the same
thread), and commands are refused; stop, pause and resume go through the run's control.
Qt-free: ``gui`` adapts the callback to signals.
"""

from cryoscope.plans import PLANS
from cryoscope.session.commands import (
    Command,
    HomeStage,
    MoveWaveplate,
    ReadGratings,
    SetCenterWavelength,
    SetCooling,
    SetEmGain,
    SetExposure,
    SetGrating,
    SetLaserEmission,
    SetLaserPower,
    SetLaserRate,
    SetReadout,
    SetSetpoint,
    SetTemperatureControl,
    StopStage,
)
from cryoscope.session.core import RigSession
from cryoscope.session.events import (
    AlignmentChanged,
    AlignmentFrame,
    CommandFailed,
    InstrumentStatuses,
    RunFinished,
    SessionEvent,
    SessionState,
    SessionStateChanged,
)
from cryoscope.session.monitors import CountRateProbe, RateMeter
from cryoscope.session.runs import RunRequest

__all__ = [
    "PLANS",
    "AlignmentChanged",
    "AlignmentFrame",
    "Command",
    "CommandFailed",
    "CountRateProbe",
    "HomeStage",
    "InstrumentStatuses",
    "MoveWaveplate",
    "RateMeter",
    "ReadGratings",
    "RigSession",
    "RunFinished",
    "RunRequest",
    "SessionEvent",
    "SessionState",
    "SessionStateChanged",
    "SetCenterWavelength",
    "SetCooling",
    "SetEmGain",
    "SetExposure",
    "SetGrating",
    "SetLaserEmission",
    "SetLaserPower",
    "SetLaserRate",
    "SetReadout",
    "SetSetpoint",
    "SetTemperatureControl",
    "StopStage",
]
