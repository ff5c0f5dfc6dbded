"""TLS for the server, and the rule that plaintext stays on loopback.

creds = server_credentials(TlsConfig(cert, key, client_ca))
require_safe_listen("0.0.0.0:50051", tls=None, insecure=False)   # raises InvalidArgument
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import grpc

from probelink.server.config import TlsConfig
from probelink.server.errors import InvalidArgument


def split_listen(listen: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); InvalidArgument with an example."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise InvalidArgument(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:50051")
    try:
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"--listen {listen!r}: the port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise InvalidArgument(f"--listen {listen!r}: a port is 0..65535")
    return host.strip("[]"), number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe_listen(listen: str, tls: TlsConfig | None, insecure: bool) -> None:
    """Plaintext beyond loopback only when the operator says --insecure."""
    host, _ = split_listen(listen)
    if tls is None and not insecure and not is_loopback(host):
        raise InvalidArgument(
            f"--listen {listen} is reachable from other machines, and without TLS every "
            "credential would cross the network in clear: give --tls-cert and --tls-key, "
            "or --insecure if a TLS proxy in front of the server handles it"
        )


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    cert = _read(tls.cert, "TLS certificate")
    key = _read(tls.key, "TLS key")
    client_ca = _read(tls.client_ca, "client CA") if tls.client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the {what} {path}: {exc.strerror}") from None
