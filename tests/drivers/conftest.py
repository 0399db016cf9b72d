"""Fixtures shared by the driver tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import vendor_fakes
from attodry_fake import FakeAttoDry


@pytest.fixture
def server() -> Iterator[FakeAttoDry]:
    fake = FakeAttoDry()
    yield fake
    fake.close()


@pytest.fixture
def motor_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    return vendor_fakes.patch_kinesis_motor(monkeypatch)


@pytest.fixture
def camera_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    return vendor_fakes.patch_andor_camera(monkeypatch)


@pytest.fixture
def spectrograph_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    return vendor_fakes.patch_shamrock(monkeypatch)


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> vendor_fakes.SwabianSdk:
    return vendor_fakes.SwabianSdk(monkeypatch)
