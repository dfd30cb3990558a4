"""What a caller without a key can make the CORS origin check cost: preflights take the per-address limit, a
rate-limited answer makes no lookup, and made-up origins never evict a shop's origin from the cache."""

import asyncio

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app
from trooply.api.cors import ListedOrigins

SHOP = "https://shop.example"


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}


def _counting_lookups(client: TestClient) -> list[str]:
    tenants = client.app.state.container.tenants
    seen: list[str] = []
    lookup = tenants.origin_is_listed

    def counted(origin: str) -> bool:
        seen.append(origin)
        return lookup(origin)

    tenants.origin_is_listed = counted  # the real lookup, counted
    return seen


def test_distinct_origins_cost_a_lookup_only_for_requests_the_address_limit_lets_through(tmp_path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_ip=0.01, rate_limit_burst_seconds=1)
    with TestClient(create_app(settings)) as client:
        lookups = _counting_lookups(client)
        statuses = [client.options("/v1/search/text", headers=_preflight(f"https://p{n}.example")).status_code
                    for n in range(50)]
        statuses += [client.post("/v1/search/text", json={"query": "x"},
                                 headers=auth("pk_not-a-real-key") | {"Origin": f"https://q{n}.example"}).status_code
                     for n in range(5)]
        through = [status for status in statuses if status != 429]
        assert statuses.count(429) == 54, statuses  # one request in 100 s: the first
        assert set(through) <= {403, 401}
        assert len(lookups) <= len(through), (len(lookups), statuses)  # before: one lookup for each of the 55


def test_a_listed_origin_keeps_its_cors_headers_on_a_429_without_a_lookup(tmp_path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_ip=0.01, rate_limit_burst_seconds=1)
    with TestClient(create_app(settings)) as client:
        tenant = new_tenant(client)
        client.app.state.container.tenants.set_allowed_origins(tenant.tenant_id, [SHOP])
        assert client.options("/v1/search/text", headers=_preflight(SHOP)).status_code == 204  # the page's preflight
        lookups = _counting_lookups(client)
        limited = client.post("/v1/search/text", json={"query": "x"}, headers=auth(tenant.publishable_key) |
                              {"Origin": SHOP})
        assert limited.status_code == 429 and limited.headers["access-control-allow-origin"] == SHOP
        stranger = client.post("/v1/search/text", json={"query": "x"}, headers=auth(tenant.publishable_key) |
                               {"Origin": "https://stranger.example"})
        assert stranger.status_code == 429 and "access-control-allow-origin" not in stranger.headers
        assert lookups == []


def test_made_up_origins_evict_only_made_up_origins(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ListedOrigins, "MAX_UNKNOWN", 50)
    with TestClient(create_app(make_settings(tmp_path))) as client:
        tenant = new_tenant(client)
        client.app.state.container.tenants.set_allowed_origins(tenant.tenant_id, [SHOP])
        lookups = _counting_lookups(client)
        now = [0.0]
        origins = ListedOrigins(client.app.state.container.tenants, 60.0, clock=lambda: now[0])

        async def flood() -> list[bool]:
            answers = [await origins.listed(SHOP)]
            answers += [await origins.listed(f"https://made-up-{n}.example") for n in range(200)]
            return [*answers, await origins.listed(SHOP), await origins.listed("https://made-up-199.example")]

        answers = asyncio.run(flood())
        assert answers[0] and answers[-2] and not any(answers[1:-2]) and not answers[-1]
        assert lookups.count(SHOP) == 1 and len(lookups) == 201  # the shop's and the last made-up one stay cached
        assert len(origins._unknown._expiry) == 50
        now[0] = 16.0  # an unknown origin is asked again after a quarter of the TTL (a merchant may just add it)
        asyncio.run(origins.listed("https://made-up-199.example"))
        assert len(lookups) == 202
