"""TCP listeners on loopback that record every connection made to them (and close it at once).

`Listeners` binds one socket per `add(host)` on a free port of that loopback address; `.seen` lists the
(host, port) of every connection accepted, in order; `wait(timeout)` waits for the first one. Used to
show where a program (k0sctl) really connects, and that a refused step connected nowhere.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Listeners:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self._sockets: list[socket.socket] = []
        self._event = threading.Event()
        self._lock = threading.Lock()

    def add(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        self._sockets.append(sock)
        address = (host, int(sock.getsockname()[1]))
        threading.Thread(target=self._serve, args=(sock, address), daemon=True, name="listener").start()
        return address

    def _serve(self, sock: socket.socket, address: tuple[str, int]) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()
            with self._lock:
                self.seen.append(address)
            self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
