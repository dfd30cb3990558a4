"""A real threaded HTTP server on 127.0.0.1 for fetch tests: images, statuses, redirects, slow, flaky."""

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# A route writes one response; it gets the handler and which hit of its path this is (1-based).
Route = Callable[[BaseHTTPRequestHandler, int], None]


def _respond(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", content_type: str | None = None,
             *, send_length: bool = True, location: str | None = None) -> None:
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    if send_length:
        handler.send_header("Content-Length", str(len(body)))
    if location:
        handler.send_header("Location", location)
    handler.end_headers()
    handler.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:
        self.server.owner._serve(self, urlsplit(self.path).path)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    # Slow handlers may still be sleeping at shutdown; don't wait for them.
    block_on_close = False

    def __init__(self, owner: "ImageServer") -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up early (byte caps, timeouts) is what the tests provoke; report anything else.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class ImageServer:
    """Serves registered paths; unknown paths answer 404. Every request is counted per path."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._hits: Counter[str] = Counter()
        self._hosts: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        # A short poll interval keeps shutdown (once per test) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> "ImageServer":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits[path]

    def last_host(self, path: str) -> str | None:
        """The Host header of the latest request to `path`."""
        with self._lock:
            return self._hosts.get(path)

    def add_image(self, path: str, data: bytes, content_type: str = "image/png", *,
                  send_length: bool = True) -> None:
        """send_length=False omits Content-Length, so the body ends when the connection closes."""
        self._routes[path] = lambda h, _: _respond(h, 200, data, content_type, send_length=send_length)

    def add_status(self, path: str, status: int) -> None:
        self._routes[path] = lambda h, _: _respond(h, status, b"no", "text/plain")

    def add_flaky(self, path: str, failures: int, status: int, data: bytes,
                  content_type: str = "image/png") -> None:
        """Answers `status` the first `failures` times, then the image."""
        def route(h: BaseHTTPRequestHandler, hit: int) -> None:
            if hit <= failures:
                _respond(h, status, b"try later", "text/plain")
            else:
                _respond(h, 200, data, content_type)
        self._routes[path] = route

    def add_slow(self, path: str, delay_s: float, data: bytes, content_type: str = "image/png") -> None:
        """Sleeps before sending the headers."""
        def route(h: BaseHTTPRequestHandler, _: int) -> None:
            time.sleep(delay_s)
            _respond(h, 200, data, content_type)
        self._routes[path] = route

    def add_redirect(self, path: str, location: str) -> None:
        self._routes[path] = lambda h, _: _respond(h, 302, location=location)

    def _serve(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        with self._lock:
            self._hits[path] += 1
            hit = self._hits[path]
            self._hosts[path] = handler.headers.get("Host")
        route = self._routes.get(path)
        if route is None:
            _respond(handler, 404, b"not found", "text/plain")
        else:
            route(handler, hit)
