"""Limits that hold: oversized bodies are refused before they are read, rates are limited per address and
per tenant (by plan), and a revoked key stops working within the key cache time."""

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.services import create_tenant_cli, free_port, trooply_env
from trooply.api.app import create_app
from trooply.api.limits import RateLimiter, multipart_body_cap
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import Unauthorized
from trooply.tenancy.service import TenantService

MiB = 1024 * 1024
CHUNK = 64 * 1024


class FrozenClock:
    """Time stands still unless a test moves it: bursts are counted exactly, whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(tmp_path):
    """An app with the given limits on a frozen clock: limited(**settings) -> (client, clock)."""
    opened = []

    def open_app(client_address: str = "testclient", **overrides) -> tuple[TestClient, FrozenClock]:
        # One data directory each: the embedded index locks its own.
        app = create_app(make_settings(tmp_path / f"app{len(opened)}", **overrides))
        client = TestClient(app, client=(client_address, 50000))
        opened.append(client.__enter__())
        clock = FrozenClock()
        client.app.state.rate_limiter.buckets.clock = clock
        return client, clock

    yield open_app
    for client in opened:
        client.__exit__(None, None, None)


def refused(response, code: str) -> dict:
    error = response.json()["error"]
    assert error["code"] == code, response.text
    return error


# Body size

def realistic_product(i: int) -> dict:
    return {"id": f"sku-{i:06d}", "image_url": f"https://cdn.example-shop.com/images/{i:06d}/main-1600x1600.jpg",
            "title": f"Women's lightweight quilted puffer jacket with detachable hood, style {i}",
            "description": "Water-repellent shell, recycled insulation, two zip pockets. " * 32,
            "category": "outerwear/jackets", "brand": "Northwind Outfitters", "price": 129.95, "currency": "EUR",
            "in_stock": True, "url": f"https://www.example-shop.com/en/p/womens-quilted-puffer-jacket-{i}",
            "attributes": {f"attribute_{a}": f"value number {a} for this product" for a in range(12)}}


def test_a_batch_of_1000_realistic_products_fits_under_the_json_cap(client):
    body = json.dumps({"products": [realistic_product(i) for i in range(1000)]})
    assert 2 * MiB < len(body) < client.app.state.container.settings.limits.max_json_body_bytes
    # A publishable key may not write the catalog: the 403 shows the body got past the cap and was parsed.
    creds = new_tenant(client)
    response = client.post("/v1/products", content=body, headers={**auth(creds.publishable_key),
                                                                  "Content-Type": "application/json"})
    assert response.status_code == 403, response.text


def test_a_body_declared_over_the_cap_is_refused_unread(client):
    cap = client.app.state.container.settings.limits.max_json_body_bytes
    body = b'{"products": [' + b" " * (cap + MiB) + b"]}"
    response = client.post("/v1/products", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert refused(response, "payload_too_large")["details"] == {"max_bytes": cap}
    assert response.headers["X-Request-ID"]  # answered inside the request-id middleware


def test_a_chunked_body_over_the_cap_is_refused(client):
    cap = client.app.state.container.settings.limits.max_json_body_bytes
    chunks = (b" " * MiB for _ in range(cap // MiB + 2))
    key = new_tenant(client).secret_key  # a body is read only once its key is known
    response = client.post("/v1/products", content=chunks, headers={**auth(key), "Content-Type": "application/json"})
    assert response.status_code == 413 and "content-length" not in response.request.headers
    refused(response, "payload_too_large")


def test_multipart_bodies_get_the_larger_cap_derived_from_the_upload_caps(client):
    settings = client.app.state.container.settings
    cap = multipart_body_cap(settings)
    assert cap == 5 * settings.images.max_upload_bytes + MiB > settings.limits.max_json_body_bytes
    key = auth(new_tenant(client).publishable_key)
    upload = b"\0" * (settings.limits.max_json_body_bytes + MiB)
    within = client.post("/v1/search/image", files={"file": ("q.png", upload)}, headers=key)
    assert within.status_code == 422 and within.json()["error"]["code"] != "payload_too_large", within.text
    over = client.post("/v1/search/multi", files=[("files", (f"{i}.png", b"\0" * (cap // 4))) for i in range(5)],
                       headers=key)
    assert over.status_code == 413
    refused(over, "payload_too_large")


@pytest.mark.parametrize("path, content_type, capped", [
    ("/v1/products", b"application/json", lambda settings: settings.limits.max_json_body_bytes),
    ("/v1/search/image", b"multipart/form-data; boundary=x", multipart_body_cap),
])
def test_a_streamed_body_is_read_no_further_than_the_cap(client, path, content_type, capped):
    cap, key = capped(client.app.state.container.settings), new_tenant(client).secret_key
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "client": ("10.1.1.1", 1),
             "server": ("testserver", 80), "headers": [(b"content-type", content_type),
                                                      (b"authorization", f"Bearer {key}".encode())]}
    opening = b'--x\r\nContent-Disposition: form-data; name="file"; filename="q.png"\r\n\r\n'
    pulled, sent = 0, []

    async def receive():  # a client that would send 100 MiB, one chunk at a time
        nonlocal pulled
        body = opening if pulled == 0 else b"-" * CHUNK
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": pulled < 100 * MiB}

    async def send(message):
        sent.append(message)

    anyio.run(client.app, scope, receive, send)
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"]["code"] == "payload_too_large"
    assert pulled <= cap + CHUNK


# Rates

def test_the_address_limit_answers_429_with_retry_after(limited):
    client, clock = limited(rate_limit_per_ip=1, rate_limit_burst_seconds=3)
    assert [client.get("/v1/products").status_code for _ in range(3)] == [401, 401, 401]  # the burst
    response = client.get("/v1/products")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert refused(response, "rate_limited")["details"] == {"limit": "ip", "retry_after": 1}
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert 'trooply_requests_refused_total{limit="ip"}' in client.get("/metrics").text
    clock.now += 1.0
    assert client.get("/v1/products").status_code == 401


def test_retry_after_is_whole_seconds_until_a_request_may_go(limited):
    client, clock = limited(rate_limit_per_ip=0.25, rate_limit_burst_seconds=1)
    assert client.get("/v1/products").status_code == 401
    assert client.get("/v1/products").headers["Retry-After"] == "4"
    clock.now += 2.5
    assert client.get("/v1/products").headers["Retry-After"] == "2"


@pytest.mark.parametrize("trusted, forwarded, client_address", [
    ([], "203.0.113.9", "10.0.0.2"),                                   # untrusted peer: the header is ignored
    (["10.0.0.0/8"], "203.0.113.9", "203.0.113.9"),
    (["10.0.0.0/8"], "198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # the client's own hops are not believed
    (["10.0.0.0/8"], None, "10.0.0.2"),
    (["10.0.0.0/8"], "10.0.0.5", "10.0.0.5"),                          # every hop trusted: the farthest
])
def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(trusted, forwarded,
                                                                                    client_address):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    limiter = RateLimiter(Settings(trusted_proxies=trusted))
    assert limiter.client_address({"client": ("10.0.0.2", 40000), "headers": headers}) == client_address


def test_forwarded_addresses_are_limited_separately_only_from_a_trusted_proxy(limited):
    client, _ = limited("10.0.0.2", rate_limit_per_ip=1, rate_limit_burst_seconds=1, trusted_proxies=["10.0.0.0/8"])
    for address in ("203.0.113.1", "203.0.113.2"):
        assert client.get("/v1/products", headers={"X-Forwarded-For": address}).status_code == 401
    spoofed = client.get("/v1/products", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.1"})
    assert spoofed.status_code == 429
    untrusted, _ = limited("192.0.2.50", rate_limit_per_ip=1, rate_limit_burst_seconds=1)
    assert untrusted.get("/v1/products", headers={"X-Forwarded-For": "203.0.113.3"}).status_code == 401
    assert untrusted.get("/v1/products", headers={"X-Forwarded-For": "203.0.113.4"}).status_code == 429


def test_the_tenant_limit_follows_the_plan(limited):
    client, clock = limited(rate_limit_per_tenant=None, free_plan_rate_limit=2, pro_plan_rate_limit=5,
                            rate_limit_burst_seconds=1)
    free, pro, other = new_tenant(client, "f"), new_tenant(client, "p", plan="pro"), new_tenant(client, "o")
    statuses = {name: [client.get("/v1/products", headers=auth(creds.secret_key)).status_code for _ in range(6)]
                for name, creds in (("free", free), ("pro", pro), ("other", other))}
    assert statuses == {"free": [200] * 2 + [429] * 4, "pro": [200] * 5 + [429], "other": [200] * 2 + [429] * 4}
    response = client.post("/v1/search/text", json={"query": "x"}, headers=auth(free.publishable_key))
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert refused(response, "rate_limited")["details"]["limit"] == "tenant"
    assert 'trooply_requests_refused_total{limit="tenant"}' in client.get("/metrics").text
    clock.now += 0.5
    assert client.get("/v1/products", headers=auth(free.secret_key)).status_code == 200


def test_an_explicit_tenant_limit_overrides_the_plans():
    settings = Settings(rate_limit_per_tenant=7)
    assert settings.tenant_rate_limit("free") == settings.tenant_rate_limit("pro") == 7
    assert Settings().tenant_rate_limit("free") == 20 and Settings().tenant_rate_limit("pro") == 200


def test_a_limit_of_0_is_off(limited):
    client, _ = limited(rate_limit_per_ip=0, rate_limit_per_tenant=0)
    key = auth(new_tenant(client).secret_key)
    assert {client.get("/v1/products", headers=key).status_code for _ in range(100)} == {200}


def test_an_unreachable_redis_lets_requests_through(tmp_path):
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit_per_ip=1)
    with TestClient(create_app(settings)) as client:
        assert [client.get("/v1/products").status_code for _ in range(3)] == [401, 401, 401]


# Key revocation

def test_a_rotated_key_is_refused_at_once_by_the_process_that_rotated_it(client):
    creds = new_tenant(client)
    assert client.get("/v1/products", headers=auth(creds.secret_key)).status_code == 200  # now cached
    client.app.state.container.tenants.rotate_keys(creds.tenant_id)
    assert client.get("/v1/products", headers=auth(creds.secret_key)).status_code == 401


def test_a_rotated_key_is_refused_by_other_processes_within_the_key_cache_time(tmp_path):
    """Two services on one database, as two API processes are; a clock of our own, so no timing is assumed."""
    db = Database(f"sqlite:///{tmp_path / 'shared.db'}")
    db.migrate()
    now = [100.0]
    rotating, other = TenantService(db, 0.5, clock=lambda: now[0]), TenantService(db, 0.5, clock=lambda: now[0])
    creds = rotating.create_tenant("shop", "free")
    assert other.authenticate(creds.secret_key).tenant_id == creds.tenant_id  # now cached in `other`
    rotating.rotate_keys(creds.tenant_id)
    with pytest.raises(Unauthorized):
        rotating.authenticate(creds.secret_key)  # at once where it was rotated
    now[0] += 0.4
    assert other.authenticate(creds.secret_key).tenant_id == creds.tenant_id  # within the cache time
    now[0] += 0.2
    with pytest.raises(Unauthorized):
        other.authenticate(creds.secret_key)  # past it
    db.close()


def test_keys_rotate_says_when_running_servers_refuse_the_old_keys(tmp_path: Path):
    env = trooply_env(tmp_path, TROOPLY_KEY_CACHE_SECONDS="1")
    tenant = create_tenant_cli(env)
    out = subprocess.run([sys.executable, "-m", "trooply.cli", "keys", "rotate", tenant["tenant_id"]], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "revoked now" in out and "within 1 s (TROOPLY_KEY_CACHE_SECONDS)" in out
