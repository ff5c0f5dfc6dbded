"""A real headless Chromium for tests, driven over the Chrome DevTools Protocol (CDP).

    with Browser() as browser:                       # skips or fails first: require_chromium()
        browser.open(path.as_uri())
        assert browser.console_problems() == []
        png, pdf = browser.screenshot(), browser.pdf()
        assert browser.evaluate("document.title") == "…"

Debian's `chromium` is started with `--remote-debugging-port=0` (the browser picks a free
port and writes it to DevToolsActivePort in its own profile folder, so parallel tests never
collide) and one page is driven through its websocket with plain JSON-RPC. Every wait has a
deadline; on exit the browser's whole process group is killed and its profile removed, so a
failing test leaves no renderer behind.

Missing chromium skips with a reason, unless PROBELINK_REQUIRE_BROWSER=1 (set by .ci/run,
which installs it): then it fails, as PROBELINK_REQUIRE_POSTGRES does for PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import websocket

REQUIRE_BROWSER_ENV = "PROBELINK_REQUIRE_BROWSER"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# A4 at CSS's 96 px per inch: 210 mm × 297 mm.
A4_VIEWPORT = (794, 1123)


class BrowserError(RuntimeError):
    """The browser did not start, did not answer in time, or a CDP command failed."""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


def require_chromium() -> str:
    """Chromium's path; else skip the test, or fail it when the run requires a browser."""
    path = find_chromium()
    if path is None:
        reason = "browser tests need Debian's chromium (.ci/run installs chromium)"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {reason}")
        pytest.skip(reason)
    return path


class Browser:
    """One headless Chromium with one page; use it as a context manager."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        viewport: tuple[int, int] = A4_VIEWPORT,
        timeout: float = 30.0,
    ) -> None:
        self.executable = executable or require_chromium()
        self.viewport = viewport
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None
        self._profile = Path(tempfile.mkdtemp(prefix="probelink-chromium-"))

    # --- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        log = (self._profile / "chromium.log").open("wb")
        width, height = self.viewport
        self._proc = subprocess.Popen(
            [
                self.executable,
                "--headless=new",
                "--no-sandbox",  # tests run as root in CI containers
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--hide-scrollbars",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: renderers and zygotes die with it in close().
            start_new_session=True,
        )
        log.close()
        port = self._wait_port()
        page_url = self._wait_page(port)
        self._ws = websocket.create_connection(page_url, timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _deadline_passed(self, deadline: float, what: str) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise BrowserError(f"chromium exited ({self._proc.returncode}) {what}: {self._log()}")
        if time.monotonic() > deadline:
            raise BrowserError(f"chromium: no answer within {self.timeout} s {what}: {self._log()}")

    def _wait_port(self) -> int:
        """The DevTools port, from the file chromium writes once it listens."""
        active = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                first = active.read_text().splitlines()[0]
                return int(first)
            except (FileNotFoundError, IndexError, ValueError):
                # Written in two steps: an empty or partial file is "not yet".
                self._deadline_passed(deadline, "while starting")
                time.sleep(0.05)

    def _wait_page(self, port: int) -> str:
        """The websocket URL of the browser's first page."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/json/list", timeout=self.timeout
                ) as response:
                    targets = json.load(response)
            except OSError:
                targets = []
            for target in targets:
                if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                    return str(target["webSocketDebuggerUrl"])
            self._deadline_passed(deadline, "before opening a page")
            time.sleep(0.05)

    def _log(self) -> str:
        try:
            return (self._profile / "chromium.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        """Close the connection, kill the browser's process group, remove its profile."""
        if self._ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._ws.close()
            self._ws = None
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            # Whatever outlived a polite ending (a renderer, a stuck leader) goes now.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        shutil.rmtree(self._profile, ignore_errors=True)

    # --- CDP ---------------------------------------------------------------------------

    def _receive(self, deadline: float) -> dict[str, Any]:
        if self._ws is None:
            raise BrowserError("the browser is not running")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"chromium: no answer within {self.timeout} s")
        self._ws.settimeout(remaining)
        try:
            raw = self._ws.recv()
        except websocket.WebSocketTimeoutException as e:
            raise BrowserError(f"chromium: no answer within {self.timeout} s") from e
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one CDP command and return its result; events meanwhile go to `events`."""
        if self._ws is None:
            raise BrowserError("the browser is not running")
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") != ident:
                if "method" in message:
                    self.events.append(message)
                continue
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def wait_event(self, method: str) -> dict[str, Any]:
        """The next event named `method` (earlier ones already received count too)."""
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        while True:
            message = self._receive(deadline)
            if "method" in message:
                if message["method"] == method:
                    return message
                self.events.append(message)

    # --- what tests use ----------------------------------------------------------------

    def open(self, url: str) -> None:
        """Load `url` and wait for its load event; earlier pages' events are forgotten."""
        self.send("Runtime.evaluate", {"expression": "0"})  # receive what is in flight...
        self.events.clear()  # ...so that console_problems() speaks of this page only
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def console_problems(self) -> list[str]:
        """Console errors and warnings, log entries of those levels and uncaught exceptions."""
        # A round trip: every event the page sent before it has been received by then.
        self.send("Runtime.evaluate", {"expression": "0"})
        problems = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                args = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                problems.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") in ("error", "warning"):
                    problems.append(f"log {entry['level']}: {entry.get('text', '')}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                problems.append(
                    f"exception: {details.get('text', '')} "
                    f"{details.get('exception', {}).get('description', '')}"
                )
        return problems

    def screenshot(self) -> bytes:
        """The viewport as PNG."""
        result = self.send("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(result["data"])

    def pdf(self, **options: Any) -> bytes:
        """The page printed to PDF: A4, the page's own @page size first, with backgrounds."""
        params = {
            "paperWidth": 8.27,
            "paperHeight": 11.69,
            "preferCSSPageSize": True,
            "printBackground": True,
            **options,
        }
        result = self.send("Page.printToPDF", params)
        return base64.b64decode(result["data"])

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")
