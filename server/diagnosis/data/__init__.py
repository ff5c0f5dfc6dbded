"""The diagnosis's shipped data files (TOML) and the one way to read them with clear errors.

Catalogs (models, actions and prices, warranty terms) are data a service network edits, so a
mistake in one must say which file, where, which key and how to fix it::

    >>> text, source = shipped_text("actions.toml")
    >>> source
    'probelink.server.diagnosis.data/actions.toml'
    >>> doc = parse_toml(text, source)  # floats arrive as Decimal, never float

This folder is a package (it has this file) so setuptools ships its ``*.toml`` through
pyproject's package-data, and ``importlib.resources`` finds them in a wheel or a checkout.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from importlib import resources
from typing import Any

from probelink.server.errors import ServerError

__all__ = ["CatalogError", "line_of", "parse_toml", "shipped_text"]


class CatalogError(ServerError):
    """A catalog file is wrong; the message names the file, the entry, the key and the fix."""


def shipped_text(name: str) -> tuple[str, str]:
    """The text of a data file shipped in this package, and a name for it in messages."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return text, f"{__name__}/{name}"


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML with every float as `Decimal` (prices must not pass through float)."""
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already carries "(at line N, column M)".
        raise CatalogError(f"{source}: not valid TOML: {exc}") from None


def line_of(text: str, table: str) -> int | None:
    """The line (1-based) of the table header ``[table]``, for messages; None if not found.

    tomllib keeps no positions, so a header search is the honest best: keys set in dotted or
    inline form elsewhere have no line to point at.
    """
    pattern = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None
