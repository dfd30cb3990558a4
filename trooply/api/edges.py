"""Requests whose shape means two things to two readers are refused before routing: a path with an encoded
slash (a proxy that guards `/admin/` sees `/admin%2Fv1`, the router `/admin/v1`), and two Authorization
headers (one reader takes the first, another the last). The app's own redirects name no host: a Location built
from the client's Host header would send the next request wherever the client said."""

from urllib.parse import urlsplit, urlunsplit

from trooply.api.errors import error_response
from trooply.observability import REQUESTS_REFUSED

# %2F and %5C: a slash and a backslash, encoded; no product id or route holds either.
ENCODED_SEPARATORS = (b"%2f", b"%5c")


def request_problem(scope) -> tuple[str, str] | None:
    """The code and message of why this request is refused, None when it is fine."""
    raw_path = (scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")).lower()
    if any(separator in raw_path for separator in ENCODED_SEPARATORS):
        return "invalid_path", "the path holds an encoded slash or backslash (%2F, %5C); send it unencoded"
    if sum(1 for name, _ in scope["headers"] if name == b"authorization") > 1:
        return "duplicate_authorization", "send one Authorization header, not several"
    return None


def relative_location(headers: list[tuple[bytes, bytes]], host: bytes) -> list[tuple[bytes, bytes]]:
    """The headers with a Location on this request's own Host made host-less (path and query only)."""
    rewritten = []
    for name, value in headers:
        if name == b"location":
            location = urlsplit(value.decode("latin-1"))
            if location.netloc and location.netloc.encode("latin-1") == host:
                value = urlunsplit(("", "", location.path or "/", location.query, location.fragment)).encode("latin-1")
        rewritten.append((name, value))
    return rewritten


def _declares_body(scope) -> bool:
    for name, value in scope["headers"]:
        if (name == b"content-length" and value.strip() not in (b"", b"0")) or name == b"transfer-encoding":
            return True
    return False


class RequestEdgesMiddleware:
    """Also: a response sent while the request's body is still unread (refused before reading it: no key, over
    a cap, a busy account) closes the connection, so the server does not read the rest only to discard it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = dict(scope["headers"]).get(b"host", b"")
        unread = _declares_body(scope)

        async def tracking_receive():
            nonlocal unread
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                unread = False
            return message

        async def send_edges(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if 300 <= message["status"] < 400:
                    headers = relative_location(headers, host)
                if unread:
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        if (problem := request_problem(scope)) is not None:
            REQUESTS_REFUSED.labels("shape").inc()
            return await error_response(400, *problem)(scope, tracking_receive, send_edges)
        await self.app(scope, tracking_receive, send_edges)
