"""Fixtures of the simulator's physics tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from simtools import Measurement, read_measurement

from cryoscope import api
from cryoscope.config import Config


@pytest.fixture(scope="module")
def measure(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Measurement]:
    """Run the polarization series through the public API and read the file back."""
    counter = iter(range(1_000_000))

    def run(config: Config, **plan: Any) -> Measurement:
        out = tmp_path_factory.mktemp("sim") / f"run{next(counter)}.h5"
        result = api.measure(out, config, **plan)
        assert result.state == api.RunState.COMPLETE, result.error
        return read_measurement(out)

    return run
