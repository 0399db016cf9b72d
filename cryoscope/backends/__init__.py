"""Backends build a :class:`~cryoscope.rig.Rig` from a configuration: simulated
(:mod:`.simulated`) or the real instruments (:mod:`.hardware`), each imported only when its
backend is chosen. :func:`open_rig` builds, connects and configures one."""

from __future__ import annotations

import logging

from cryoscope.config import Backend, Config
from cryoscope.rig import Rig, configure

__all__ = ["build_rig", "open_rig"]

log = logging.getLogger(__name__)


def build_rig(config: Config) -> Rig:
    """The rig's instruments, not yet connected."""
    if config.rig.backend is Backend.SIMULATED:
        from cryoscope.backends.simulated import build_simulated_rig

        return build_simulated_rig(config)
    from cryoscope.backends.hardware import build_hardware_rig

    return build_hardware_rig(config)


def open_rig(config: Config) -> Rig:
    """Build, connect and configure the rig. On any failure, what was connected is closed."""
    rig = build_rig(config)
    try:
        for name, instrument in rig.instruments().items():
            log.info("connecting %s", name)
            instrument.connect()
        configure(rig)
    except BaseException:
        rig.close()
        raise
    log.info("rig '%s' (%s) ready", config.rig.name, config.rig.backend)
    return rig
