"""What every RPC does before and after its own work: who calls, may they, and errors.

    class ReportsServicer(...):
        @rpc("probelink.v1.ReportsService/GetReport")
        async def GetReport(self, request, context, caller): ...

The decorator authenticates the caller, checks the role table, runs the method and turns
any `ServerError` into the gRPC status `errors.status_of` names, with the error's
message as details — the one boundary where domain errors become statuses.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol, TypeVar

import grpc

from probelink.server.auth import roles
from probelink.server.auth.authenticator import Authenticator, Caller
from probelink.server.errors import IngestRefused, PermissionDenied, ServerError, Unauthenticated
from probelink.server.metrics import Metrics
from probelink.wire import REFUSAL_REASON_KEY

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Guarded(Protocol):
    guard: Guard


class Guard:
    """Authentication and authorisation for one server."""

    def __init__(self, authenticator: Authenticator, metrics: Metrics) -> None:
        self.authenticator = authenticator
        self.metrics = metrics

    async def admit(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> Caller:
        """The caller, if it may call `method`; raises Unauthenticated or PermissionDenied."""
        try:
            caller = await self.authenticator.identify(context.invocation_metadata())
            roles.check(caller.role, method)
        except Unauthenticated:
            self.metrics.auth_refused.labels(code="unauthenticated").inc()
            raise
        except PermissionDenied:
            self.metrics.auth_refused.labels(code="permission_denied").inc()
            raise
        return caller


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: ServerError) -> NoReturn:
    """End the call with the status and message `error` stands for."""
    from probelink.server.errors import status_of

    trailing: tuple[tuple[str, str], ...] = ()
    if isinstance(error, IngestRefused):
        trailing = ((REFUSAL_REASON_KEY, error.reason_name),)
    await context.abort(status_of(error), str(error), trailing_metadata=trailing)
    raise AssertionError("context.abort returned")  # it raises; this satisfies NoReturn


def rpc(
    method: str,
) -> Callable[
    [Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp], Caller], Awaitable[Resp]]],
    Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
]:
    """Wrap a unary servicer method: admit the caller for `method`, map errors."""

    def wrap(
        fn: Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp], Caller], Awaitable[Resp]],
    ) -> Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
        @functools.wraps(fn)
        async def handler(
            self: Guarded, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
        ) -> Resp:
            try:
                caller = await self.guard.admit(context, method)
                return await fn(self, request, context, caller)
            except ServerError as error:
                await abort(context, error)

        return handler

    return wrap
