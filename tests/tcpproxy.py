"""A loopback TCP forwarder a test can break on purpose: the flaky network between two parts.

    proxy = TcpProxy("127.0.0.1", server_port)   # listens on 127.0.0.1:proxy.port
    proxy.cut()        # every connection closed, nothing listens: the link is gone
    proxy.restore()    # the same port accepts again
    proxy.drop()       # new connections are accepted, then closed at once
    proxy.reset()      # every open connection gets a TCP RST (ECONNRESET on both ends)
    proxy.stall()      # connections stay open but no byte moves, either way
    proxy.heal()       # drop and stall end: held bytes flow, new connections forward
    proxy.accepted     # connections accepted so far (dropped ones too)

Use it between an agent and the server, or a server and PostgreSQL. Each connection is
two sockets (the client's, and ours to the target) and two pump threads. A stall holds
what it already read and delivers it, in order, on `heal()`; a peer that times out
meanwhile sees exactly what a stalled network shows it: silence.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType

# SO_LINGER on, 0 seconds: close() then discards unsent data and sends RST, not FIN.
_RST_ON_CLOSE = struct.pack("ii", 1, 0)


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's socket and ours to the target."""

    client: socket.socket
    upstream: socket.socket
    # Set when the test broke it: its pumps then forward nothing more, not even EOF.
    broken: bool = False
    pumps_done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sockets(self) -> tuple[socket.socket, socket.socket]:
        return self.client, self.upstream


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 to `host:port` that a test can cut, drop, reset and stall."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._links: list[_Link] = []
        self._accepted = 0
        self._dropping = False
        self._stalled = False
        # Guards the fields above; pumps wait on it while stalled.
        self._state = threading.Condition()
        self.restore()

    @property
    def accepted(self) -> int:
        """Connections accepted so far, dropped ones included."""
        with self._state:
            return self._accepted

    def restore(self) -> None:
        """Listen (again) on the same port."""
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        self._listener.listen()
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every connection (FIN): the network is gone."""
        # shutdown() first: close() alone does not wake the thread blocked in accept().
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for link in self._take_links():
            for s in link.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def drop(self) -> None:
        """Accept new connections and close them at once; open ones are left alone."""
        with self._state:
            self._dropping = True

    def reset(self) -> None:
        """Send a TCP RST to both ends of every open connection; new ones forward as usual."""
        for link in self._take_links():
            for s in link.sockets:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
                    # SHUT_RD wakes the pump blocked in recv() without telling the peer
                    # anything; the close that follows is what sends the RST.
                    s.shutdown(socket.SHUT_RD)
                s.close()

    def stall(self) -> None:
        """Keep every connection open but forward nothing, either way, until `heal()`."""
        with self._state:
            self._stalled = True

    def heal(self) -> None:
        """End drop and stall: bytes held by a stall flow on, in order."""
        with self._state:
            self._dropping = False
            self._stalled = False
            self._state.notify_all()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _take_links(self) -> list[_Link]:
        """Every open link, marked broken so no pump forwards anything more."""
        with self._state:
            links, self._links = self._links, []
            for link in links:
                link.broken = True
            self._state.notify_all()  # a stalled pump of a broken link ends
        return links

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._state:
                self._accepted += 1
                dropping = self._dropping
            if dropping:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                # The target is down: the client sees what it would see without us.
                with contextlib.suppress(OSError):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
                client.close()
                continue
            link = _Link(client, upstream)
            with self._state:
                self._links.append(link)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(link, a, b), daemon=True).start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not self._may_forward(link):
                    return
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # EOF travels on, like a FIN would
        except OSError:
            # One end reset or vanished: end the other direction too, as a host would.
            for s in link.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        self._pump_done(link)

    def _may_forward(self, link: _Link) -> bool:
        """Wait out a stall; False once the test broke the link."""
        with self._state:
            self._state.wait_for(lambda: link.broken or not self._stalled)
            return not link.broken

    def _pump_done(self, link: _Link) -> None:
        with link.lock:
            link.pumps_done += 1
            finished = link.pumps_done == 2
        if not finished:
            return
        # Both directions ended by themselves: free the sockets, forget the link.
        with self._state:
            if link in self._links:
                self._links.remove(link)
        for s in link.sockets:
            s.close()
