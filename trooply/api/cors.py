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
- What a caller without a key can make this cost is bounded: preflights take the per-address rate limit (this
  middleware sits outside it), a request's origin is looked up only for an error answer, never for a 429 (the
  cache answers, or no CORS header), and the cache keeps listed and unknown origins apart, each a bounded LRU, so
  a flood of made-up origins evicts only made-up origins.
"""

import time
from collections import OrderedDict
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from trooply.api.errors import error_response
from trooply.api.limits import RateLimited, RateLimiter, refusal
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


class _Recent:
    """A bounded map of origin to expiry, least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def fresh(self, origin: str, now: float) -> bool:
        expiry = self._expiry.get(origin)
        if expiry is None:
            return False
        if expiry <= now:
            del self._expiry[origin]
            return False
        self._expiry.move_to_end(origin)
        return True

    def put(self, origin: str, expiry: float) -> None:
        self._expiry[origin] = expiry
        self._expiry.move_to_end(origin)
        while len(self._expiry) > self.size:
            self._expiry.popitem(last=False)

    def discard(self, origin: str) -> None:
        self._expiry.pop(origin, None)


class ListedOrigins:
    """Whether any live tenant lists an origin, remembered briefly: preflights come before every search. Listed
    and unknown origins are remembered apart (unknown ones for less time), so made-up origins never evict a
    shop's."""

    MAX_LISTED = 10_000
    MAX_UNKNOWN = 10_000
    UNKNOWN_TTL_FRACTION = 0.25  # an origin a merchant just added is seen within a quarter of the TTL

    def __init__(self, tenants: TenantService, ttl_seconds: float, clock=time.monotonic) -> None:
        self.tenants, self.ttl, self.clock = tenants, ttl_seconds, clock
        self._listed, self._unknown = _Recent(self.MAX_LISTED), _Recent(self.MAX_UNKNOWN)

    def known(self, origin: str) -> bool | None:
        """What the cache says, without a lookup (None: it does not know)."""
        now = self.clock()
        if self._listed.fresh(origin, now):
            return True
        return False if self._unknown.fresh(origin, now) else None

    async def listed(self, origin: str) -> bool:
        known = self.known(origin)
        if known is not None:
            return known
        listed = await run_in_threadpool(self.tenants.origin_is_listed, origin.lower())
        now = self.clock()
        if listed:
            self._unknown.discard(origin)
            self._listed.put(origin, now + self.ttl)
        else:
            self._listed.discard(origin)
            self._unknown.put(origin, now + self.ttl * self.UNKNOWN_TTL_FRACTION)
        return listed


class CorsMiddleware:
    """Answers preflights and adds the CORS headers to answers `admit_browser_origin` marked. Plain ASGI."""

    def __init__(self, app, origins: ListedOrigins, limiter: RateLimiter | None = None) -> None:
        self.app, self.origins, self.limiter = app, origins, limiter

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scope["method"] == "OPTIONS" and origin and b"access-control-request-method" in headers:
            return await self._preflight(scope, receive, send, origin, headers)
        if not origin or not is_browser_path(scope["path"]):
            return await self.app(scope, receive, send)

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                state = scope.get("state", {})
                allowed = state.get(STATE_KEY)
                if not allowed and message["status"] >= 400 and state.get(KIND_KEY) != SECRET \
                        and await self._listed_for_error(origin, message["status"]):
                    allowed = origin  # an error the page may read: why its request failed
                if allowed:
                    extra += [(b"access-control-allow-origin", allowed.encode("latin-1")),
                              (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _listed_for_error(self, origin: str, status: int) -> bool:
        if status == 429:  # refused for its rate: the cache answers (a shop's page has had its preflight)
            return bool(self.origins.known(origin))
        return await self.origins.listed(origin)

    async def _preflight(self, scope, receive, send, origin: str, headers: dict[bytes, bytes]) -> None:
        if self.limiter is not None and not self.limiter.exempts(scope):
            try:
                await self.limiter.check_address(scope)
            except RateLimited as error:
                return await refusal(error)(scope, receive, send)
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
    """Call after `install_limits`: preflights take its per-address limit."""
    app.add_middleware(CorsMiddleware, origins=ListedOrigins(tenants, max(1.0, cache_seconds)),
                       limiter=getattr(app.state, "rate_limiter", None))
