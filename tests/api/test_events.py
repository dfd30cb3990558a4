"""POST /v1/events through the app: the publishable key, per-event rejections, and the refusals that store
nothing (too many events, a body over its cap)."""

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import auth, new_tenant
from trooply.api.routers.events import EVENTS_MAX_BODY_BYTES
from trooply.feedback.models import FeedbackEvent
from trooply.search.models import SearchLog


def _logged_search(client: TestClient, tenant_id: str, search_id: str, product_ids: list[str]) -> None:
    with client.app.state.container.db.session() as session:
        session.add(SearchLog(id=search_id, tenant_id=tenant_id, mode="text", product_ids=product_ids, took_ms=1.0))


def _events_stored(client: TestClient) -> int:
    with client.app.state.container.db.session() as session:
        return session.scalar(select(func.count()).select_from(FeedbackEvent)) or 0


def test_a_batch_is_stored_with_its_rejections_listed(client: TestClient) -> None:
    tenant = new_tenant(client)
    _logged_search(client, tenant.tenant_id, "srch_1", ["a", "b"])
    answer = client.post("/v1/events", headers=auth(tenant.publishable_key), json={"events": [
        {"type": "click", "search_id": "srch_1", "product_id": "b", "position": 1, "event_id": "e-1"},
        {"type": "click", "search_id": "srch_nope", "product_id": "b", "position": 1},
        {"type": "add_to_cart", "search_id": "srch_1", "product_id": "b", "position": 1},
    ]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": [
        {"index": 1, "code": "unknown_search", "message": "no search 'srch_nope'"}]}
    again = client.post("/v1/events", headers=auth(tenant.publishable_key), json={"events": [
        {"type": "click", "search_id": "srch_1", "product_id": "b", "position": 1, "event_id": "e-1"}]})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert _events_stored(client) == 2


def test_too_many_events_or_too_many_bytes_store_nothing(client: TestClient) -> None:
    tenant = new_tenant(client)
    _logged_search(client, tenant.tenant_id, "srch_1", ["a"])
    click = {"type": "click", "search_id": "srch_1", "product_id": "a", "position": 0}
    many = client.post("/v1/events", headers=auth(tenant.publishable_key), json={"events": [click] * 1001})
    assert many.status_code == 422 and many.json()["error"]["code"] == "too_many_events"
    padded = json.dumps({"events": [click | {"user_token": "x" * 64}] * 1000, "pad": " " * EVENTS_MAX_BODY_BYTES})
    big = client.post("/v1/events", headers=auth(tenant.publishable_key) | {"Content-Type": "application/json"},
                      content=padded)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    empty = client.post("/v1/events", headers=auth(tenant.publishable_key), json={"events": []})
    assert empty.status_code == 422
    assert _events_stored(client) == 0


def test_a_full_batch_of_the_largest_events_fits_the_cap(client: TestClient) -> None:
    tenant = new_tenant(client)
    product = "p" * 256
    _logged_search(client, tenant.tenant_id, "s" * 40, [product])
    event = {"type": "purchase", "search_id": "s" * 40, "product_id": product, "position": 1000, "value": 999999.99,
             "currency": "EUR", "user_token": "u" * 64}
    batch = {"events": [event | {"event_id": f"{i:064d}"} for i in range(1000)]}
    assert len(json.dumps(batch)) < EVENTS_MAX_BODY_BYTES
    answer = client.post("/v1/events", headers=auth(tenant.publishable_key), json=batch)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1  # one purchase of one result: once
    assert answer.json()["duplicates"] == 999
