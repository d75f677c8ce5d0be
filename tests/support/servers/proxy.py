"""A TCP relay in front of a test server that pulls the plug part-way through a transfer.

Used to stop a server *mid-collection* deterministically for a client running in another process
(the ``accessaudit`` command line): once ``after`` bytes have gone from the server to the client,
``cut()`` is called (e.g. ``SambaDC.stop``) and every relayed connection is closed. TLS passes
through untouched, so the client still verifies the server's own certificate (the test PKI names
127.0.0.1, where the relay listens).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class CuttingProxy:
    def __init__(
        self,
        upstream: tuple[str, int],
        after: int,
        cut: Callable[[], None],
        host: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream
        self.after = after
        self.cut = cut
        self.relayed = 0
        self.was_cut = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind((host, 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"ldaps://{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for src, dst, down in ((client, server, False), (server, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, down), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data or self.was_cut.is_set():
                break
            if down:
                with self._lock:
                    self.relayed += len(data)
                    reached = self.relayed >= self.after and not self.was_cut.is_set()
                    if reached:
                        self.was_cut.set()
                if reached:
                    self.cut()
                    self._close_all()
                    return
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _close_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop.set()
        self._close_all()
        self._listener.close()
        for t in self._threads:
            t.join(timeout=5)
