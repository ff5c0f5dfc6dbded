"""How a client reaches a Probelink server: one channel, TLS when asked, a bearer token.

    channel = open_channel("127.0.0.1:50051")                        # plaintext, loopback
    channel = open_channel("probelink.example:443", tls=ClientTls(ca=Path("ca.pem")))
    stub.ListReports(request, metadata=bearer(token), timeout=10)

Both the agent and the server's client commands use it (the contract's root package is
the one place both may import).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

# Reports are at most 1 MiB by default; answers (a report read back) a little more.
MAX_MESSAGE_BYTES = 4 << 20
_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Fail fast when nothing listens, instead of waiting for the call's deadline.
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True)
class ClientTls:
    # The CA that signed the server's certificate; None = the system's roots.
    ca: Path | None = None
    # A client certificate and key, when the server requires mTLS.
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca),
            private_key=read(self.key),
            certificate_chain=read(self.cert),
        )


def target_problem(target: str) -> str | None:
    """Why `target` is not HOST:PORT (or [v6]:PORT), in words for --server; None if it is."""
    host, sep, port = target.strip().rpartition(":")
    if not sep or not host.strip("[]"):
        return f"--server {target!r}: expected HOST:PORT, e.g. 127.0.0.1:50051"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"--server {target!r}: the port must be a number from 1 to 65535"
    return None


def open_channel(target: str, tls: ClientTls | None = None) -> grpc.Channel:
    """A blocking channel to `target` (HOST:PORT)."""
    if tls is None:
        return grpc.insecure_channel(target, options=_OPTIONS)
    return grpc.secure_channel(target, tls.credentials(), options=_OPTIONS)


def open_aio_channel(
    target: str,
    tls: ClientTls | None = None,
    extra_options: list[tuple[str, int | str]] | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to `target` (HOST:PORT); `extra_options` e.g. keepalive."""
    options = _OPTIONS + (extra_options or [])
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token` (an API token or a device credential)."""
    return (("authorization", f"Bearer {token.strip()}"),)
