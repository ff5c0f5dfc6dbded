"""What every client command shares: which server, as whom, one call, calm errors.

    @app.command("list")
    @connected
    def list_tokens(client: Client, json_out: JsonOpt = False) -> None:
        response = client.call(client.admin.ListTokens, admin_pb2.ListTokensRequest())

`connected` gives a command the connection options (`--server`, `--token`,
`--token-file`, `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`, `--timeout`) and hands it a
`Client`; `Client.call` runs one unary RPC with the token as bearer metadata and turns a
refusal into one line on stderr — the server's own message, written for people — and
an exit code.

Exit codes of every client command:

    0  done
    1  the server failed in a way it did not explain (INTERNAL, UNKNOWN, ...)
    2  bad input: fix the command line (also INVALID_ARGUMENT, FAILED_PRECONDITION,
       ALREADY_EXISTS from the server)
    3  the token was refused: unknown, revoked, or its role may not do this
       (UNAUTHENTICATED, PERMISSION_DENIED)
    4  no such report, token, device or dictionary (NOT_FOUND)
    5  the server could not be reached or did not answer in time
       (UNAVAILABLE, DEADLINE_EXCEEDED)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console

from probelink.channel import ClientTls, bearer, open_channel, target_problem
from probelink.v1 import admin_pb2_grpc, gateway_pb2_grpc, reports_pb2_grpc

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_UNREACHABLE = 5

DEFAULT_SERVER = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 10.0
SERVER_ENV = "PROBELINK_SERVER"
TOKEN_ENV = "PROBELINK_TOKEN"
TLS_CA_ENV = "PROBELINK_TLS_CA"

_EXIT_OF: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.UNAUTHENTICATED: EXIT_REFUSED,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_REFUSED,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNREACHABLE,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_USAGE,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_USAGE,
}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

ServerOpt = Annotated[
    str, typer.Option("--server", envvar=SERVER_ENV, help="The server's HOST:PORT.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        show_default=False,
        help="Your API token (plt_…). The server's data dir holds the first admin.token.",
    ),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Read the token from this file, e.g. probelink-data/admin.token (wins over --token).",
    ),
]
TlsOpt = Annotated[
    bool, typer.Option("--tls", help="Use TLS, trusting the system's certificate authorities.")
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca", envvar=TLS_CA_ENV, help="Use TLS, trusting this CA for the server (PEM)."
    ),
]
TlsCertOpt = Annotated[
    Path | None, typer.Option("--tls-cert", help="Client certificate, when the server wants mTLS.")
]
TlsKeyOpt = Annotated[Path | None, typer.Option("--tls-key", help="The client certificate's key.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the server's answer.")
]

Resp = TypeVar("Resp", bound=Message)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise: `raise fail("…")`."""
    Console(stderr=True, highlight=False).print(message, markup=False, soft_wrap=True)
    return typer.Exit(code)


def to_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data, with the .proto's own field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@dataclass
class Client:
    """One channel to one server, and the token every call carries."""

    address: str
    token: str
    channel: grpc.Channel
    timeout_s: float = DEFAULT_TIMEOUT_S
    tls: bool = False

    @property
    def reports(self) -> reports_pb2_grpc.ReportsServiceStub:
        return reports_pb2_grpc.ReportsServiceStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.channel)

    @property
    def gateway(self) -> gateway_pb2_grpc.AgentGatewayServiceStub:
        return gateway_pb2_grpc.AgentGatewayServiceStub(self.channel)

    def call(
        self,
        method: Callable[..., Resp],
        request: Message,
        hints: Mapping[grpc.StatusCode, str] | None = None,
    ) -> Resp:
        """Run one unary RPC; on a refusal print one line and raise typer.Exit.

        `hints` adds a sentence for a status where this command knows more than the
        server can (e.g. which command makes the missing thing).
        """
        try:
            response: Resp = method(request, metadata=bearer(self.token), timeout=self.timeout_s)
        except grpc.RpcError as error:
            code = error.code()
            details = error.details() or code.name
            message = self._explain(code, details)
            if hints and code in hints:
                message += f" ({hints[code]})"
            raise fail(message, _EXIT_OF.get(code, EXIT_FAILED)) from None
        return response

    def _explain(self, code: grpc.StatusCode, details: str) -> str:
        if code == grpc.StatusCode.UNAVAILABLE:
            advice = f"is the server running at {self.address}?"
            if not self.tls:
                advice += " If it uses TLS, give --tls-ca (or --tls)."
            return f"cannot reach the server at {self.address}: {details}. {advice}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return (
                f"no answer from {self.address} within {self.timeout_s:g} s: is the server "
                f"running at {self.address}? (--timeout waits longer)"
            )
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return f"refused: {details}"
        if code == grpc.StatusCode.NOT_FOUND:
            return f"not found: {details}"
        if _EXIT_OF.get(code) == EXIT_USAGE:
            return f"the server cannot do that: {details}"
        return f"the server failed ({code.name}): {details}"

    def close(self) -> None:
        self.channel.close()


@dataclass(frozen=True)
class Connection:
    """The connection options as the command line gave them."""

    server: str = DEFAULT_SERVER
    token: str | None = None
    token_file: Path | None = None
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    def open(self) -> Client:
        """A Client, or typer.Exit(2) with what to fix."""
        address = check_address(self.server)
        token = self._token()
        if self.timeout <= 0:
            raise fail(f"--timeout {self.timeout:g}: give a number of seconds above 0")
        tls = self._tls()
        try:
            channel = open_channel(address, tls)
        except OSError as error:
            # ClientTls reads the PEM files here.
            raise fail(f"cannot read the TLS files: {error}") from None
        return Client(address, token, channel, self.timeout, tls is not None)

    def _token(self) -> str:
        # The file wins over --token / PROBELINK_TOKEN: naming a file is the more
        # deliberate act, and an exported PROBELINK_TOKEN should not override it.
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise fail(
                    f"cannot read the token from --token-file {self.token_file}: {error}"
                ) from None
            if not text:
                raise fail(f"--token-file {self.token_file} is empty: it should hold one token")
            return text
        if self.token is not None and self.token.strip():
            return self.token.strip()
        raise fail(
            f"no token: give --token T, --token-file FILE, or set {TOKEN_ENV}. On first "
            "start the server writes an admin token to admin.token in its data dir "
            "(e.g. --token-file probelink-data/admin.token)."
        )

    def _tls(self) -> ClientTls | None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise fail("--tls-cert and --tls-key go together (a client certificate and its key)")
        if not (self.tls or self.tls_ca or self.tls_cert):
            return None
        for option, path in (
            ("--tls-ca", self.tls_ca),
            ("--tls-cert", self.tls_cert),
            ("--tls-key", self.tls_key),
        ):
            if path is not None and not path.is_file():
                raise fail(f"{option} {path}: no such file")
        return ClientTls(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key)


def check_address(server: str) -> str:
    """`server` if it reads HOST:PORT (or [v6]:PORT); typer.Exit(2) with an example if not."""
    problem = target_problem(server)
    if problem is not None:
        raise fail(problem)
    return server.strip()


# The connection options `connected` adds to a command, as Typer reads them.
_CONNECTION_PARAMS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
    for name, annotation, default in (
        ("server", ServerOpt, DEFAULT_SERVER),
        ("token", TokenOpt, None),
        ("token_file", TokenFileOpt, None),
        ("tls", TlsOpt, False),
        ("tls_ca", TlsCaOpt, None),
        ("tls_cert", TlsCertOpt, None),
        ("tls_key", TlsKeyOpt, None),
        ("timeout", TimeoutOpt, DEFAULT_TIMEOUT_S),
    )
]
_CONNECTION_NAMES = tuple(p.name for p in _CONNECTION_PARAMS)


def connected(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command(client, ...)` the connection options and an open Client.

    The options are added to the command's signature, which is what Typer reads, so
    every client command spells them the same way without repeating eight parameters.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "client"]

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name in _CONNECTION_NAMES}
        client = Connection(**options).open()
        try:
            command(client, **kwargs)
        finally:
            client.close()

    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *_CONNECTION_PARAMS]
    )
    run.__annotations__ = {p.name: p.annotation for p in [*own, *_CONNECTION_PARAMS]}
    return run
