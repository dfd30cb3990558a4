"""A real HTTP server on 127.0.0.1 publishing one catalogue feed, as a merchant's site or Merchant Center does:
a body that can change, with an ETag and Last-Modified, answering a conditional GET with 304 when unchanged."""

import gzip
import hashlib
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    block_on_close = False

    def __init__(self, owner: "FeedServer") -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class FeedServer:
    """`publish` replaces the feed; `answers` counts what the server sent: 200, 304."""

    def __init__(self, validators: bool = True) -> None:
        self.validators = validators
        self.delay_s = 0.0  # before answering: a sync that takes a while
        self.hold = threading.Event()  # cleared: requests wait until it is set (a sync held mid-download)
        self.hold.set()
        self.gzip = False  # compress the body for a client that accepts it
        self.answers: Counter[int] = Counter()
        self.requests = 0  # received, answered or not
        self._body = b""
        self._version = 0
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> "FeedServer":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, name: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{name}"

    def publish(self, body: str | bytes) -> None:
        with self._lock:
            self._body = body.encode() if isinstance(body, str) else body
            self._version += 1

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        self.hold.wait(60)
        time.sleep(self.delay_s)
        with self._lock:
            body, version = self._body, self._version
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        modified = formatdate(1_700_000_000 + version * 60, usegmt=True)
        unchanged = self.validators and (handler.headers.get("If-None-Match") == etag
                                         or handler.headers.get("If-Modified-Since") == modified)
        status = 304 if unchanged else 200
        with self._lock:
            self.answers[status] += 1
        handler.send_response(status)
        if self.validators:
            handler.send_header("ETag", etag)
            handler.send_header("Last-Modified", modified)
        if status == 200 and self.gzip and "gzip" in handler.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            handler.send_header("Content-Encoding", "gzip")
        if status == 200:
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if status == 200:
            handler.wfile.write(body)
