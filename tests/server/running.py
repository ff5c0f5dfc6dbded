"""A real Probelink server for tests: in a thread of this process, or as a process.

    with RunningServer(tmp_path) as server:               # 127.0.0.1, a free port
        device = server.enroll()                          # a fresh credential and key
        ack = device.upload(report)                       # signed, UploadReport, real gRPC
        frame = device.encoder(content, 3).encode(data)   # a signed frame to send by hand
        server.admin_token                                # from <data-dir>/admin.token

    with ServerProcess(tmp_path, db=url) as proc:         # `probelink-server serve`
        proc.terminate()                                  # SIGTERM, as an operator would

The thread runs the server on its own event loop, so synchronous tests and the CLI
runner can call it like any other server on the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from probelink import wire
from probelink.channel import bearer, open_channel
from probelink.server.app import ProbelinkServer
from probelink.server.config import ServeConfig
from probelink.signing import DeviceKey
from probelink.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    report_pb2,
    reports_pb2_grpc,
    wire_pb2,
)


@dataclasses.dataclass
class Device:
    """An enrolled device: its id, credential, signing key and a channel to the server."""

    device_id: str
    credential: str
    channel: grpc.Channel
    key: DeviceKey
    dictionary: gateway_pb2.EnrollResponse | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.credential)

    @property
    def gateway(self) -> gateway_pb2_grpc.AgentGatewayServiceStub:
        return gateway_pb2_grpc.AgentGatewayServiceStub(self.channel)

    def upload_frame(self, frame: wire_pb2.ReportFrame) -> gateway_pb2.UploadReportResponse:
        return self.gateway.UploadReport(
            gateway_pb2.UploadReportRequest(frame=frame), metadata=self.metadata, timeout=30
        )

    def encoder(self, dictionary: bytes | None = None, dictionary_id: int = 0) -> wire.Encoder:
        """An encoder whose frames this device has signed."""
        return wire.Encoder(dictionary, dictionary_id, key=self.key)

    def frame(self, report: report_pb2.Report | bytes) -> wire_pb2.ReportFrame:
        """`report` (or serialized bytes) as this device sends it: signed, no dictionary."""
        serialized = report if isinstance(report, bytes) else report.SerializeToString()
        return self.encoder().encode(serialized)

    def upload(
        self, report: report_pb2.Report, encoder: wire.Encoder | None = None
    ) -> gateway_pb2.UploadReportResponse:
        """Upload `report`, compressed by `encoder` (default: signed, no dictionary)."""
        frame = (encoder or self.encoder()).encode(report.SerializeToString())
        return self.upload_frame(frame)


class RunningServer:
    def __init__(self, data_dir: Path, **config: Any) -> None:
        config.setdefault("listen", "127.0.0.1:0")
        config.setdefault("grace_s", 5.0)
        self.config = ServeConfig(data_dir=data_dir, **config)
        self.data_dir = data_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: ProbelinkServer | None = None
        self._channels: list[grpc.Channel] = []

    def __enter__(self) -> RunningServer:
        self._thread.start()
        self.server = self.run(ProbelinkServer.start(self.config))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        if self.server is not None:
            self.run(self.server.stop())
            self.server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.address

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def enroll_secret(self) -> str:
        return (self.data_dir / "enroll.secret").read_text().strip()

    def channel(self) -> grpc.Channel:
        channel = open_channel(self.address)
        self._channels.append(channel)
        return channel

    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.channel())

    def reports(self) -> reports_pb2_grpc.ReportsServiceStub:
        return reports_pb2_grpc.ReportsServiceStub(self.channel())

    def enroll(
        self, model: str = "Test Model", secret: str | None = None, key: DeviceKey | None = None
    ) -> Device:
        """A newly enrolled device, registering `key` (default: a fresh one)."""
        channel = self.channel()
        key = key or DeviceKey.generate()
        response = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Enroll(
            gateway_pb2.EnrollRequest(
                enroll_secret=secret or self.enroll_secret,
                identity=report_pb2.DeviceIdentity(manufacturer="Probelink Labs", model=model),
                agent_version="test",
                device_public_key=key.public_key,
            ),
            timeout=30,
        )
        return Device(response.device_id, response.credential, channel, key, response)

    def token(self, role: int, device_id: str = "") -> str:
        """A fresh API token of `role` (a probelink.v1.Role value)."""
        response = self.admin().CreateToken(
            admin_pb2.CreateTokenRequest(role=role, label="test", device_id=device_id),  # type: ignore[arg-type]
            metadata=bearer(self.admin_token),
            timeout=30,
        )
        return response.token


def serve_argv(data_dir: Path, *args: str, listen: str = "127.0.0.1:0") -> list[str]:
    """The command line of `probelink-server serve` for a test, this interpreter's."""
    return [
        sys.executable,
        "-m",
        "probelink.server.cli",
        "serve",
        "--listen",
        listen,
        "--data-dir",
        str(data_dir),
        *args,
    ]


class ServerProcess:
    """`probelink-server serve` as a child process on a free port.

    Its stderr (the server's log) goes to a file beside the data dir, `stderr_path`, not
    a pipe: a server that logs a lot (thousands of refused signatures) would otherwise
    block once the unread pipe is full.
    """

    def __init__(self, data_dir: Path, *args: str, db: str | None = None) -> None:
        self.data_dir = data_dir
        self.stderr_path = data_dir.parent / f"{data_dir.name}.stderr"
        self.port_file = data_dir / "port"
        self.argv = [
            *serve_argv(data_dir),
            "--port-file",
            str(self.port_file),
            "--json",
            *(["--db", db] if db else []),
            *args,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, timeout: float = 30) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                self.proc.communicate()
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start listening")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        return self

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stderr(self) -> str:
        """What the server wrote to stderr so far (this start's)."""
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> tuple[int, str, str]:
        """SIGTERM; the exit code and what the server printed (stdout, stderr)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.stderr()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
