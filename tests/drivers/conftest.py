"""Fixtures shared by the driver tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from attodry_fake import FakeAttoDry


@pytest.fixture
def server() -> Iterator[FakeAttoDry]:
    fake = FakeAttoDry()
    yield fake
    fake.close()
