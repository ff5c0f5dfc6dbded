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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*.json from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
