"""Limits that hold before a request costs anything: a body-size cap and per-address and per-tenant rates.

A rate is a token bucket kept as GCRA (one "next request due at" time per key): `rate` requests a second,
and up to rate × burst_seconds at once after an idle spell. The buckets live in this process by default, so
each API process limits on its own; with `redis_url` they live in Redis, updated by one atomic Lua script
on Redis's clock, so every API process shares each limit.
"""

import logging
import math
import time
from ipaddress import ip_address, ip_network

from fastapi import FastAPI
from redis import RedisError
from redis.asyncio import Redis

from trooply.admin.auth import AdminGate
from trooply.api.errors import error_response
from trooply.config import Settings
from trooply.errors import PayloadTooLarge, TrooplyError, byte_size
from trooply.observability import REQUESTS_REFUSED
from trooply.search.schemas import MAX_MULTI_IMAGES
from trooply.tenancy.service import Principal

log = logging.getLogger(__name__)
# Probes and scrapes must never be refused: a throttled /readyz would take a healthy pod out of service.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
FORM_OVERHEAD_BYTES = 1024 * 1024  # multipart boundaries and the text fields around the uploads


class RateLimited(TrooplyError):
    code = "rate_limited"
    status = 429

    def __init__(self, limit: str, message: str, wait: float) -> None:
        retry_after = max(1, math.ceil(wait))  # Retry-After is whole seconds
        super().__init__(f"{message}; retry in {retry_after} s", details={"limit": limit, "retry_after": retry_after})


def multipart_body_cap(settings: Settings) -> int:
    # The largest multipart query: a multi-image search's uploads, or one recording.
    largest = max(settings.images.max_upload_bytes * MAX_MULTI_IMAGES, settings.voice.max_audio_bytes)
    return largest + FORM_OVERHEAD_BYTES


class LocalBuckets:
    """This process's buckets; touched only from the event loop, so without a lock."""

    PRUNE_ABOVE = 100_000

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._due: dict[str, float] = {}
        self._prune_above = self.PRUNE_ABOVE

    async def take(self, key: str, interval: float, tolerance: float) -> float:
        """0 when a request may go now (and counts it), else the seconds until one may."""
        now = self.clock()
        due = max(self._due.get(key, now), now)
        if due - now > tolerance:
            return due - now - tolerance
        self._due[key] = due + interval
        if len(self._due) > self._prune_above:
            # A key already due is a full bucket, the same as no key at all.
            self._due = {k: t for k, t in self._due.items() if t > now}
            self._prune_above = max(self.PRUNE_ABOVE, 2 * len(self._due))  # a flood of live keys: prune less often
        return 0.0

    async def close(self) -> None:
        pass


# LocalBuckets.take, atomically in Redis; TIME is Redis's clock, so API hosts' clocks never disagree.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if due - now > tolerance then
    return tostring(due - now - tolerance)
end
redis.call('SET', KEYS[1], tostring(due + interval), 'PX', math.ceil((due + interval - now) * 1000))
return '0'
"""


class RedisBuckets:
    """Buckets shared by every API process that uses the same Redis."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.redis.register_script(GCRA_SCRIPT)

    async def take(self, key: str, interval: float, tolerance: float) -> float:
        try:
            return float(await self.script(keys=[f"trooply:rate:{key}"], args=[interval, tolerance]))
        except RedisError:
            # A limiter outage must not become an API outage: the request goes through unlimited.
            log.warning("rate limit store unreachable; request not limited", exc_info=True)
            return 0.0

    async def close(self) -> None:
        await self.redis.aclose()


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A bad CIDR fails start-up.
        self.trusted_proxies = [ip_network(cidr) for cidr in settings.limits.trusted_proxies]
        self.buckets = RedisBuckets(settings.redis_url) if settings.redis_url else LocalBuckets()
        self.admin_gate = AdminGate(settings.admin_token) if settings.admin_token is not None else None

    async def check_address(self, scope) -> None:
        await self._take("ip", self.client_address(scope), self.settings.limits.rate_limit_per_ip,
                         "too many requests from this address")

    def exempts(self, scope) -> bool:
        """Probes, scrapes and the admin token are never limited."""
        if scope["path"] in UNLIMITED_PATHS:
            return True
        if self.admin_gate is None or not scope["path"].startswith("/admin/"):
            return False
        return self.admin_gate.admits_header(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1"))

    async def check_tenant(self, principal: Principal) -> None:
        rate = self.settings.tenant_rate_limit(principal.plan)
        await self._take("tenant", principal.tenant_id, rate, f"this tenant may send {rate:g} requests a second")

    async def _take(self, limit: str, key: str, rate: float, message: str) -> None:
        if rate <= 0:  # 0 turns a limit off
            return
        burst = max(1.0, rate * self.settings.limits.rate_limit_burst_seconds)
        # A microsecond of slack: rounding in the sum of intervals must not cost a burst its last request.
        wait = await self.buckets.take(f"{limit}:{key}", 1 / rate, (burst - 1) / rate + 1e-6)
        if wait > 0:
            REQUESTS_REFUSED.labels(limit).inc()
            raise RateLimited(limit, message, wait)

    def client_address(self, scope) -> str:
        """The peer; behind a trusted proxy, the nearest untrusted hop of X-Forwarded-For, read from the
        right, because only the hops our own proxies appended can be believed."""
        address = (scope.get("client") or ("unknown",))[0]
        if not self._is_trusted(address):
            return address
        forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
        for hop in reversed([hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]):
            address = hop
            if not self._is_trusted(hop):
                break
        return address

    def _is_trusted(self, address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:  # "testclient", a Unix socket, a garbled hop
            return False
        parsed = getattr(parsed, "ipv4_mapped", None) or parsed  # a dual-stack server sees ::ffff:10.0.0.1
        return any(parsed in network for network in self.trusted_proxies)

    async def close(self) -> None:
        await self.buckets.close()


def refusal(error: TrooplyError):
    """The answer to a request refused before routing (a rate or a body cap)."""
    # These answers leave before routing, where the domain error handler never runs: its envelope, by hand.
    headers = {"Retry-After": str(error.details["retry_after"])} if isinstance(error, RateLimited) else None
    return error_response(error.status, error.code, error.message, error.details, headers)


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds {byte_size(cap)}", details={"max_bytes": cap})


class BodyLimitMiddleware:
    """Caps the request body before it is read: by Content-Length up front, else by counting bytes as they
    arrive and stopping at the cap. Plain ASGI, so nothing buffers the body on its behalf."""

    def __init__(self, app, json_cap: int, multipart_cap: int) -> None:
        self.app, self.json_cap, self.multipart_cap = app, json_cap, multipart_cap

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        cap = self.multipart_cap if multipart else self.json_cap
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            REQUESTS_REFUSED.labels("body").inc()
            return await refusal(_too_large(cap))(scope, receive, send)
        received, over, started = 0, False, False

        async def capped_receive():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > cap:
                over = True
                raise _too_large(cap)
            return message

        async def send_unless_over(message) -> None:
            nonlocal started
            if over and not started:
                return  # the handler's own answer to the aborted read (FastAPI's is a 400): ours goes out below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, send_unless_over)
        except Exception:
            if not over or started:  # once over the cap, any failure is the aborted read's
                raise
        if over and not started:
            REQUESTS_REFUSED.labels("body").inc()
            await refusal(_too_large(cap))(scope, receive, send)


class RateLimitMiddleware:
    """The per-address limit, before routing, on every route but the probes. Closes the limiter's store
    when the app shuts down."""

    def __init__(self, app, limiter: RateLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            try:
                return await self.app(scope, receive, send)
            finally:
                await self.limiter.close()
        if scope["type"] == "http" and not self.limiter.exempts(scope):
            try:
                await self.limiter.check_address(scope)
            except RateLimited as error:
                return await refusal(error)(scope, receive, send)
        await self.app(scope, receive, send)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """The limit middleware (call before adding the request-id middleware, so that refusals carry an id and
    an access log line), and the limiter the auth dependency applies per tenant."""
    app.state.rate_limiter = limiter = RateLimiter(settings)
    app.add_middleware(BodyLimitMiddleware, json_cap=settings.limits.max_json_body_bytes,
                       multipart_cap=multipart_body_cap(settings))
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
