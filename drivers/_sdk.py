"""Helpers shared by the real drivers: lazy vendor imports and a connection guard."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from drivers.interfaces import NotConnectedError, SdkMissingError

__all__ = ["import_sdk", "require"]


def import_sdk(instrument: str, module: str, install_hint: str) -> ModuleType:
    """Import a vendor module at connect time.

    Raises :class:`SdkMissingError` (one line naming the instrument and ``install_hint``) if the
    module or a library it loads on import is missing.
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        raise SdkMissingError(
            instrument, f"cannot import {module} ({exc}); {install_hint}"
        ) from exc


def require(instrument: str, handle: Any) -> Any:
    """Return ``handle``, or raise :class:`NotConnectedError` if it is None."""
    if handle is None:
        raise NotConnectedError(instrument, "not connected (call connect() first)")
    return handle
