"""CORS for storefronts: a browser on a tenant's own site may call search, feedback and events with the
publishable key, and nothing else is opened to other origins.

- A preflight carries no key, so it is answered (204, with the methods and headers those routes need) when its
  `Origin` is one that some live tenant allows, on a browser path; any other preflight gets 403 and no CORS
  header, so the browser stops there.
- The request itself is checked once its key is known (`admit_browser_origin`, from the auth dependency): a
  publishable key from an origin its tenant does not list is refused with 403 `origin_not_allowed` (a key copied
  to another site stops working there); from a listed one, the answer carries `Access-Control-Allow-Origin`.
- An error answered before a publishable key was admitted (a bad key, a rate limit, a body too large, or the
  origin refused for this key) carries them too when some tenant lists the origin, so that the page can show why;
  an answer to a secret key never does. Same-origin requests (the portal) are not CORS.
"""

import time
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from trooply.api.errors import error_response
from trooply.errors import Forbidden
from trooply.tenancy.service import PUBLISHABLE, SECRET, Principal, TenantService

BROWSER_PATH_PREFIXES = ("/v1/search/", "/v1/events")
ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "x-request-id"})
EXPOSED_HEADERS = "x-request-id, retry-after"
PREFLIGHT_MAX_AGE_SECONDS = 600
STATE_KEY = "cors_origin"  # set on the request scope's state when the answer may carry CORS headers
KIND_KEY = "cors_key_kind"  # the authenticated key's kind, when there is one


def is_browser_path(path: str) -> bool:
    return path.startswith(BROWSER_PATH_PREFIXES)


def cross_origin(request: Request) -> str | None:
    """The request's `Origin` when it names another site than the one it was sent to; None otherwise."""
    origin = request.headers.get("origin")
    if not origin:
        return None
    return None if urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower() else origin


def admit_browser_origin(request: Request, principal: Principal) -> None:
    """Called with the authenticated principal: refuses a publishable key from a foreign origin its tenant does
    not list, and marks an allowed one for the CORS headers."""
    origin = cross_origin(request)
    if origin is None:
        return
    request.scope.setdefault("state", {})[KIND_KEY] = principal.key_kind
    if principal.key_kind != PUBLISHABLE:
        return
    if origin.lower() not in principal.allowed_origins:
        raise Forbidden(f"this publishable key is not accepted from {origin[:200]}: add the origin to the tenant's "
                        "allowed origins (portal: API keys)", code="origin_not_allowed",
                        details={"origin": origin[:200]})
    if is_browser_path(request.url.path):
        request.scope.setdefault("state", {})[STATE_KEY] = origin


class ListedOrigins:
    """Whether any live tenant lists an origin, remembered briefly: preflights come before every search."""

    MAX_ENTRIES = 10_000

    def __init__(self, tenants: TenantService, ttl_seconds: float, clock=time.monotonic) -> None:
        self.tenants, self.ttl, self.clock = tenants, ttl_seconds, clock
        self._known: dict[str, tuple[float, bool]] = {}

    async def listed(self, origin: str) -> bool:
        known = self._known.get(origin)
        if known is not None and known[0] > self.clock():
            return known[1]
        listed = await run_in_threadpool(self.tenants.origin_is_listed, origin.lower())
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
        self._known[origin] = (self.clock() + self.ttl, listed)
        return listed


class CorsMiddleware:
    """Answers preflights and adds the CORS headers to answers `admit_browser_origin` marked. Plain ASGI."""

    def __init__(self, app, origins: ListedOrigins) -> None:
        self.app, self.origins = app, origins

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scope["method"] == "OPTIONS" and origin and b"access-control-request-method" in headers:
            return await self._preflight(scope, receive, send, origin, headers)
        if not origin or not is_browser_path(scope["path"]):
            return await self.app(scope, receive, send)
        listed = await self.origins.listed(origin)

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                state = scope.get("state", {})
                allowed = state.get(STATE_KEY)
                if not allowed and listed and message["status"] >= 400 and state.get(KIND_KEY) != SECRET:
                    allowed = origin  # an error the page may read: why its request failed
                if allowed:
                    extra += [(b"access-control-allow-origin", allowed.encode("latin-1")),
                              (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope, receive, send, origin: str, headers: dict[bytes, bytes]) -> None:
        method = headers[b"access-control-request-method"].decode("latin-1").upper()
        asked = {h.strip().lower() for h in headers.get(b"access-control-request-headers", b"").decode("latin-1")
                 .split(",") if h.strip()}
        if (is_browser_path(scope["path"]) and method in ALLOWED_METHODS.split(", ") and asked <= ALLOWED_HEADERS
                and await self.origins.listed(origin)):
            response: Response = _preflight_answer(origin)
        else:
            response = error_response(403, "origin_not_allowed", "this origin may not call this path from a browser",
                                      {"origin": origin[:200]})
        await response(scope, receive, send)


def _preflight_answer(origin: str) -> Response:
    return Response(status_code=204, headers={
        "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ", ".join(sorted(ALLOWED_HEADERS)),
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS), "Vary": "Origin"})


def install_cors(app: FastAPI, tenants: TenantService, cache_seconds: float) -> None:
    app.add_middleware(CorsMiddleware, origins=ListedOrigins(tenants, max(1.0, cache_seconds)))
