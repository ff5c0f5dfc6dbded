"""The flaky-network proxy, each mode seen by a real client socket through it to an echo server.

drop   -> the client's connect succeeds, then it reads EOF at once
reset  -> ConnectionResetError on the client, and on the server's side too
stall  -> recv() times out; heal() delivers what was held, in order
cut    -> connections closed, connect refused; restore() listens on the same port
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.tcpproxy import TcpProxy

GUARD_S = 10.0  # a bound on any wait, so a regression fails instead of hanging
QUIET_S = 0.3  # how long a stalled connection must stay silent


class EchoServer:
    """A loopback TCP server that sends back what it reads and notes how each peer left."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.endings: list[str] = []  # "eof" or "reset", one per finished connection
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        ending = "eof"
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except ConnectionResetError:
                ending = "reset"
        with self.lock:
            self.endings.append(ending)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def connect(proxy: TcpProxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=GUARD_S)
    return client


def receive(client: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes (or fewer if the peer ended first)."""
    got = b""
    while len(got) < size:
        chunk = client.recv(size - len(got))
        if not chunk:
            break
        got += chunk
    return got


def echoes(proxy: TcpProxy, payload: bytes = b"ping") -> bool:
    with connect(proxy) as client:
        client.sendall(payload)
        return receive(client, len(payload)) == payload


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", echo.port) as running:
        yield running


def test_it_forwards_both_ways_and_counts_connections(proxy: TcpProxy, echo: EchoServer) -> None:
    assert proxy.accepted == 0
    payload = bytes(range(256)) * 1024  # larger than one recv()
    with connect(proxy) as client:
        client.sendall(payload)
        assert receive(client, len(payload)) == payload
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1) == b""  # our EOF reached the server, and its EOF came back
    assert echoes(proxy)
    assert (proxy.accepted, echo.connections) == (2, 2)
    wait_for(lambda: echo.endings == ["eof", "eof"], "both connections ended cleanly")


def test_drop_accepts_then_closes_at_once(proxy: TcpProxy, echo: EchoServer) -> None:
    with connect(proxy) as kept:
        kept.sendall(b"up")
        assert receive(kept, 2) == b"up"  # forwarded before the drop began
        proxy.drop()
        for _ in range(3):
            with connect(proxy) as client:
                assert client.recv(1) == b""
        assert (proxy.accepted, echo.connections) == (4, 1)  # the target saw none of them
        kept.sendall(b"still here")  # an open connection is left alone
        assert receive(kept, 10) == b"still here"
    proxy.heal()
    assert echoes(proxy)
    assert (proxy.accepted, echo.connections) == (5, 2)


def test_reset_sends_rst_to_both_ends(proxy: TcpProxy, echo: EchoServer) -> None:
    clients = [connect(proxy) for _ in range(2)]
    try:
        for client in clients:
            client.sendall(b"hello")
            assert receive(client, 5) == b"hello"
        proxy.reset()
        for client in clients:
            with pytest.raises(ConnectionResetError):
                client.recv(1)
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: echo.endings == ["reset", "reset"], "the server saw both resets")
    assert echoes(proxy)  # new connections forward as before
    assert proxy.accepted == 3


def test_stall_holds_every_byte_until_heal(proxy: TcpProxy, echo: EchoServer) -> None:
    with connect(proxy) as before:
        proxy.stall()
        before.sendall(b"one ")
        before.sendall(b"two")
        before.settimeout(QUIET_S)
        with pytest.raises(TimeoutError):
            before.recv(1)
        # A connection opened during the stall is accepted and held like the others.
        with connect(proxy) as during:
            during.sendall(b"three")
            during.settimeout(QUIET_S)
            with pytest.raises(TimeoutError):
                during.recv(1)
            wait_for(lambda: proxy.accepted == 2, "the proxy accepted it")
            proxy.heal()
            during.settimeout(GUARD_S)
            before.settimeout(GUARD_S)
            assert receive(during, 5) == b"three"
            assert receive(before, 7) == b"one two"  # in order, nothing lost
    assert echoes(proxy)


def test_a_stall_holds_the_end_of_a_connection_too(proxy: TcpProxy, echo: EchoServer) -> None:
    with connect(proxy) as client:
        client.sendall(b"bye")
        assert receive(client, 3) == b"bye"
        proxy.stall()
        client.shutdown(socket.SHUT_WR)
        client.settimeout(QUIET_S)
        with pytest.raises(TimeoutError):
            client.recv(1)
        assert echo.endings == []  # the server has not seen the EOF
        proxy.heal()
        client.settimeout(GUARD_S)
        assert client.recv(1) == b""
    wait_for(lambda: echo.endings == ["eof"], "the server saw the EOF after heal")


def test_reset_ends_a_stalled_connection(proxy: TcpProxy, echo: EchoServer) -> None:
    with connect(proxy) as client:
        client.sendall(b"up")
        assert receive(client, 2) == b"up"  # an open connection, not one in the backlog
        proxy.stall()
        client.sendall(b"lost")
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            receive(client, 4)
    proxy.heal()
    assert echoes(proxy)


def test_cut_closes_and_refuses_then_restore_listens_on_the_same_port(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    port = proxy.port
    with connect(proxy) as client:
        client.sendall(b"up")
        assert receive(client, 2) == b"up"
        proxy.cut()
        assert client.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.restore()
    assert proxy.port == port
    assert echoes(proxy)


def test_a_target_that_is_down_is_a_refused_connection_not_a_dead_proxy() -> None:
    with socket.socket() as placeholder:  # a port nothing listens on, for now
        placeholder.bind(("127.0.0.1", 0))
        target = placeholder.getsockname()[1]
    with TcpProxy("127.0.0.1", target) as proxy:
        # The RST can even beat connect() home on loopback: either way, a reset.
        with pytest.raises(ConnectionResetError), connect(proxy) as client:
            client.recv(1)
        server = EchoServer(target)
        try:
            assert echoes(proxy)  # the proxy kept accepting
            assert proxy.accepted == 2
        finally:
            server.close()
