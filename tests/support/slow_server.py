"""A raw server on 127.0.0.1 that answers every connection one byte at a time, for deadline tests."""

import socket
import threading
from types import TracebackType


class DribbleServer:
    """Reads the request, sends `head` at once, then `drip` one byte every `interval_s` seconds."""

    def __init__(self, head: bytes, drip: bytes, interval_s: float) -> None:
        self.head, self.drip, self.interval_s = head, drip, interval_s
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        # A short accept timeout lets the accept loop notice close() quickly.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0  # accepted so far
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> "DribbleServer":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.head)
                for byte in self.drip:
                    if self._closed.wait(self.interval_s):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up, which is what the tests provoke
