"""The HTML diagnosis in a real headless Chromium: it loads clean, draws, and prints on A4.

Skipped without chromium unless PROBELINK_REQUIRE_BROWSER=1 (.ci/run), then it fails.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from probelink.server.render import render_diagnosis_html
from probelink.server.render.diagnosis_html import LANGS
from tests.browser import Browser
from tests.server.diagnosis.test_engine import _bought, _diagnose, _wearing_history

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "diagnosis"
SAMPLES = ("urgent_laptop", "healthy_phone", "could_not_judge")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # One browser for the module: starting one costs far more than a page load.
    with Browser() as b:
        yield b


def write_page(tmp_path: Path, name: str, lang: str) -> Path:
    document = json.loads((SAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    path = tmp_path / f"{name}.{lang}.html"
    path.write_text(render_diagnosis_html(document, lang), encoding="utf-8")
    return path


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, the decompressed scanlines) of a PNG, checking its structure."""
    assert png.startswith(PNG_SIGNATURE), "not a PNG"
    offset, idat, width, height = len(PNG_SIGNATURE), b"", 0, 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat += data
        offset += 12 + length
        if kind == b"IEND":
            break
    return width, height, zlib.decompress(idat)


def pdf_pages(pdf: bytes) -> int:
    """Page objects (/Type /Page), not the page tree (/Type /Pages)."""
    assert pdf.startswith(b"%PDF-"), "not a PDF"
    assert b"%%EOF" in pdf[-64:]
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SAMPLES)
def test_the_page_loads_without_a_console_problem(
    browser: Browser, tmp_path: Path, name: str, lang: str
) -> None:
    browser.events.clear()
    browser.open(write_page(tmp_path, name, lang).as_uri())
    # A blocked reference (the CSP), a bad CSS value or a script error would show here.
    assert browser.console_problems() == []
    assert browser.evaluate("document.documentElement.lang") == lang
    assert browser.evaluate("document.characterSet") == "UTF-8"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SAMPLES)
def test_nothing_is_wider_than_an_a4_page(
    browser: Browser, tmp_path: Path, name: str, lang: str
) -> None:
    browser.open(write_page(tmp_path, name, lang).as_uri())
    assert browser.evaluate("window.innerWidth") == 794  # A4's 210 mm at 96 px per inch
    width = browser.evaluate("document.documentElement.scrollWidth")
    assert width <= 794, f"the page is {width} px wide"
    # No single element either (scrollWidth misses content clipped by its own box).
    widest = browser.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('body *'),"
        " e => e.getBoundingClientRect().right))"
    )
    assert widest <= 794, f"an element reaches {widest} px"


def test_the_screenshot_shows_a_drawn_page(browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "urgent_laptop", "en").as_uri())
    png = browser.screenshot()
    (tmp_path / "urgent_laptop.en.png").write_bytes(png)
    width, height, scanlines = png_pixels(png)
    assert (width, height) == (794, 1123)
    assert len(png) > 10_000
    # One colour would compress to a handful of distinct bytes; text and a red banner do not.
    assert len(set(scanlines)) > 64


@pytest.mark.parametrize(
    ("name", "most_pages"), [("urgent_laptop", 3), ("healthy_phone", 1), ("could_not_judge", 2)]
)
def test_it_prints_on_few_a4_pages(
    browser: Browser, tmp_path: Path, name: str, most_pages: int
) -> None:
    browser.open(write_page(tmp_path, name, "en").as_uri())
    pdf = browser.pdf()
    (tmp_path / f"{name}.pdf").write_bytes(pdf)
    pages = pdf_pages(pdf)
    assert 1 <= pages <= most_pages, f"{name} prints on {pages} pages"
    # A4 in points (1/72 in): 595 × 842, from @page.
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box is not None
    assert float(box[1]) == pytest.approx(595.3, abs=1)
    assert float(box[2]) == pytest.approx(841.9, abs=1)


def test_the_browser_client_sees_what_these_tests_rely_on(browser: Browser, tmp_path: Path) -> None:
    """A page with every problem: the checks above would catch each one."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy'"
        " content=\"default-src 'none'; style-src 'unsafe-inline'\"></head>"
        "<body><div style='width:300mm'>wide</div><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.warn('w'); console.error('e'); throw new Error('boom')</script>"
        "</body></html>",
        encoding="utf-8",
    )
    good = tmp_path / "good.html"
    good.write_text("<!DOCTYPE html><html lang='en'><body>calm</body></html>", "utf-8")
    browser.open(bad.as_uri())
    problems = browser.console_problems()
    assert any("Content Security Policy" in p and "x.png" in p for p in problems), problems
    # The inline script itself is blocked by the CSP: nothing of it ran.
    assert not any("boom" in p for p in problems)
    assert browser.evaluate("document.documentElement.scrollWidth") > 794
    bad.write_text(
        "<!DOCTYPE html><html lang='en'><body><script>console.warn('w');"
        " console.error('e'); throw new Error('boom')</script></body></html>",
        encoding="utf-8",
    )
    browser.open(bad.as_uri())
    problems = browser.console_problems()
    assert "console.warning: w" in problems and "console.error: e" in problems
    assert any(p.startswith("exception:") and "boom" in p for p in problems), problems
    browser.open(good.as_uri())
    assert browser.console_problems() == []  # the last page's problems only


@pytest.mark.parametrize("lang", LANGS)
def test_a_document_the_engine_made_renders_and_prints(
    browser: Browser, tmp_path: Path, lang: str
) -> None:
    # Not a hand-written sample: the real engine's diagnosis of the captured laptop with a
    # wearing battery history (a projection with its interval), in warranty in China.
    history = _wearing_history()
    doc = _diagnose(history[-1], history=history[:-1], purchase=_bought(200, "CN"))
    assert any(t["projection"] for t in doc["trends"])
    page = tmp_path / f"engine-{lang}.html"
    page.write_text(render_diagnosis_html(doc, lang), encoding="utf-8")
    browser.events.clear()
    browser.open(page.as_uri())
    assert browser.console_problems() == []
    assert browser.evaluate("document.querySelectorAll('svg').length") == len(doc["trends"])
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert 1 <= pdf_pages(browser.pdf()) <= 3
