"""`check --upload --preview` at a real terminal: it shows what would be sent, then asks.

"y" sends exactly what was shown; "n" (or Enter: the default) sends nothing. Both run
the agent on a pty against a real server and read the server's store afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format

from probelink.channel import bearer
from probelink.v1 import reports_pb2
from tests.agent.daemon_harness import stored_ids
from tests.server.running import RunningServer
from tests.test_agent_cli import _read_until

MACHINE = Path(__file__).resolve().parents[1] / "fixtures" / "machines" / "laptop-worn-battery"


def preview_at_a_terminal(server: RunningServer, state: Path, answer: bytes) -> tuple[int, str]:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "probelink.agent.cli",
            "check",
            "--sysfs-root",
            str(MACHINE / "sys"),
            "--upload",
            "--preview",
            "--server",
            server.address,
            "--enroll-secret-file",
            str(server.data_dir / "enroll.secret"),
            "--state-dir",
            str(state),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(slave)
    try:
        shown = _read_until(master, b"Send this report to")
        os.write(master, answer + b"\r")
        shown += _read_until(master, b"\x00", timeout_s=60)  # to the end
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


def previewed_report(text: str) -> dict[str, object]:
    """The JSON the preview printed (from its first "{" at a line start to its "}")."""
    start = text.index("{\n")
    end = text.index("\n}\n", start) + 2
    report: dict[str, object] = json.loads(text[start:end])
    return report


def test_yes_sends_exactly_what_was_shown(tmp_path: Path) -> None:
    with RunningServer(tmp_path / "server") as server:
        code, text = preview_at_a_terminal(server, tmp_path / "agent", b"y")
        shown = previewed_report(text)
        assert code in (0, 1), text  # the verdict's code: uploaded
        assert "Uploaded to" in text, text
        assert stored_ids(server.data_dir) == [shown["report_id"]]
        got = server.reports().GetReport(
            reports_pb2.GetReportRequest(report_id=str(shown["report_id"])),
            metadata=bearer(server.admin_token),
            timeout=30,
        )
    # What was stored is exactly what was shown, personal fields hashed.
    assert json_format.MessageToDict(got.report, preserving_proto_field_name=True) == shown
    device = shown["device"]
    assert isinstance(device, dict)
    assert str(device["serial_number"]).startswith("h:")
    assert got.summary.signature == reports_pb2.SIGNATURE_VERDICT_VERIFIED


def test_no_sends_nothing(tmp_path: Path) -> None:
    with RunningServer(tmp_path / "server") as server:
        code, text = preview_at_a_terminal(server, tmp_path / "agent", b"n")
        assert "Not sent." in text, text
        assert "Uploaded" not in text
        assert stored_ids(server.data_dir) == []
    # The verdict's code (the check ran); nothing about an upload, since none was tried.
    assert code in (0, 1), text
