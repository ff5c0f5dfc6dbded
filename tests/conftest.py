"""Shared test fixtures: paths of the captured machines and smartctl outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MACHINES = FIXTURES / "machines"
SMARTCTL = FIXTURES / "smartctl"


@pytest.fixture
def machines() -> Path:
    return MACHINES


@pytest.fixture
def smartctl_dir() -> Path:
    return SMARTCTL
