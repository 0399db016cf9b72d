"""The ``cryoscope gui`` sub-command. Imports no Qt until the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``gui`` to the ``cryoscope`` command line."""
    parser = subparsers.add_parser("gui", help="the desktop application at the microscope")
    parser.add_argument("--config", help="configuration file (default: config/simulated.toml)")
    parser.add_argument("--speed", help='simulated rig speed: virtual seconds per wall second '
                        '(default 1.0 = real time) or "max"')
    parser.add_argument("--no-connect", action="store_true",
                        help="start without connecting to the rig")
    parser.add_argument("--open", metavar="FILE", help="show a measurement file at start")
    parser.set_defaults(handler=_run)


def parse_speed(text: str | None) -> str | float:
    """``"max"`` or a positive factor; the GUI's default is real time (1.0)."""
    if text is None:
        return 1.0
    if text.strip().lower() == "max":
        return "max"
    value = float(text)
    if value <= 0:
        raise ValueError(f"speed must be positive, got {text}")
    return value


def _run(args: argparse.Namespace) -> int:
    from cryoscope.config import Backend, ConfigError, load_config

    try:
        config = load_config(args.config)
        if config.rig.backend is Backend.SIMULATED:
            config = config.with_overrides("simulation", speed=parse_speed(args.speed))
    except (ConfigError, ValueError) as exc:
        print(f"cryoscope: {exc}", file=sys.stderr)
        return 2
    try:
        from gui.app import run_app
    except ImportError as exc:
        print(f"cryoscope: the GUI needs PyQt6 and pyqtgraph ({exc}); install them with "
              "pip install 'cryoscope[gui]'", file=sys.stderr)
        return 1
    return run_app(config, connect=not args.no_connect, open_file=args.open)
