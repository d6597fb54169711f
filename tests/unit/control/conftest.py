"""Fixtures shared by the control tests: an in-memory cluster store and the service operations over it."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.testing.memstore import MemoryManager


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def ops(manager: MemoryManager) -> ServiceOps:
    return ServiceOps(manager, logs=None)  # type: ignore[arg-type]
