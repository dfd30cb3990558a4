"""What a body may cost is settled before it is read: no key (or the wrong one), no byte read; each route's cap
is what its fields can use; the Content-Type must be one the route takes; form fields carrying JSON are small.
Requests go to the ASGI app with a receive() that counts what the app pulled, so "unread" is observed."""

import json
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.images import solid_png
from trooply.api.app import create_app
from trooply.api.body import SMALL_JSON_BODY_BYTES, StrictJsonRoute
from trooply.api.forms import MAX_FORM_FIELD_BYTES

CHUNK = 64 * 1024
ADMIN_TOKEN = "admin-token-0123456789abcdef"


@dataclass
class Answer:
    status: int
    error: dict
    chunks_read: int


def send_chunked(client: TestClient, path: str, headers: dict[str, str], chunks: int,
                 chunk: bytes = b" " * CHUNK) -> Answer:
    """POSTs `chunks` chunks without a Content-Length, counting how many the app asked for."""
    pulled = 0
    replies: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message: dict) -> None:
        replies.append(message)

    async def call() -> None:
        scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": path, "raw_path": path.encode(),
                 "root_path": "", "scheme": "http", "query_string": b"", "client": ("127.0.0.1", 5000),
                 "server": ("testserver", 80), "state": {},
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        await client.app(scope, receive, send)

    client.portal.call(call)
    start = next(m for m in replies if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in replies if m["type"] == "http.response.body")
    return Answer(start["status"], json.loads(body)["error"], pulled)


@pytest.fixture
def admin_client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, admin_token=ADMIN_TOKEN))) as test_client:
        yield test_client


JSON = {"Content-Type": "application/json"}
EIGHT_MB = 8 * 1024 * 1024 // CHUNK


@pytest.mark.parametrize("headers", [{}, auth("sk_not-a-key"), auth("pk_not-a-key")])
def test_a_body_without_a_valid_key_is_never_read(client, headers):
    numbers = b"[" + b"1," * (CHUNK // 2 - 1) + b"1"  # an 8 MB array of numbers, as the attack sent
    answer = send_chunked(client, "/v1/search/text", {**JSON, **headers}, EIGHT_MB, numbers)
    assert (answer.status, answer.chunks_read) == (401, 0), answer
    assert answer.error["code"] in ("missing_api_key", "invalid_api_key")


def test_a_key_without_the_scope_is_refused_before_its_body(client):
    keys = new_tenant(client)
    answer = send_chunked(client, "/v1/products", {**JSON, **auth(keys.publishable_key)}, EIGHT_MB)
    assert (answer.status, answer.error["code"], answer.chunks_read) == (403, "insufficient_scope", 0)


def test_the_admin_api_reads_no_body_without_the_token(admin_client):
    for headers in ({}, auth("wrong-token-0123456789"), auth(new_tenant(admin_client).secret_key)):
        answer = send_chunked(admin_client, "/admin/v1/tenants", {**JSON, **headers}, EIGHT_MB)
        assert answer.status in (401, 403) and answer.chunks_read == 0, answer


def test_a_search_body_is_capped_at_what_a_search_uses(client):
    keys = new_tenant(client)
    answer = send_chunked(client, "/v1/search/text", {**JSON, **auth(keys.publishable_key)}, EIGHT_MB)
    assert (answer.status, answer.error["code"]) == (413, "payload_too_large")
    assert answer.error["details"] == {"max_bytes": SMALL_JSON_BODY_BYTES}
    assert answer.chunks_read <= SMALL_JSON_BODY_BYTES // CHUNK + 1, "reading stops at the cap"
    # Declared up front: refused unread.
    big = b'{"query": "bag", "pad": "' + b" " * SMALL_JSON_BODY_BYTES + b'"}'
    response = client.post("/v1/search/text", content=big, headers={**JSON, **auth(keys.publishable_key)})
    assert response.status_code == 413


def test_a_batch_of_products_keeps_the_large_cap(client):
    keys = new_tenant(client)
    products = [{"id": f"p{i}", "image_url": "http://127.0.0.1:9/a.png", "title": "t" * 200} for i in range(1000)]
    body = json.dumps({"products": products})
    assert len(body) > SMALL_JSON_BODY_BYTES
    response = client.post("/v1/products", content=body, headers={**JSON, **auth(keys.secret_key)})
    assert response.status_code == 202 and response.json()["accepted"] == 1000


def _api_routes(routes) -> list:
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router whole
        found.extend(_api_routes(included.routes) if included is not None else [route])
    return found


def _json_routes(client: TestClient, content_type: str | None) -> list[tuple[str, str]]:
    """The routes that take a JSON body and not `content_type`."""
    routes = []
    for route in [r for r in _api_routes(client.app.routes) if isinstance(r, StrictJsonRoute)]:
        declared = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
        if route.body_field is not None or "application/json" in declared:
            if content_type and content_type.startswith("application/x-www-form") and "multipart/form-data" in declared:
                continue  # a route that takes a form reads this one as a form
            path = route.path.replace("{product_id}", "p1").replace("{tenant_id}", "ten_x").replace("{job_id}", "j")
            routes.extend((method, path) for method in route.methods if method in ("POST", "PUT", "PATCH", "DELETE"))
    return routes


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_every_json_route_names_the_content_type_header_when_it_is_wrong(admin_client, content_type):
    keys = new_tenant(admin_client)
    routes = _json_routes(admin_client, content_type)
    assert len(routes) >= 10 and ("POST", "/v1/search/text") in routes and ("POST", "/admin/v1/tenants") in routes
    wrong = {}
    for method, path in routes:
        key = ADMIN_TOKEN if path.startswith("/admin/") else keys.secret_key
        headers = {**auth(key), **({"Content-Type": content_type} if content_type else {})}
        response = admin_client.request(method, path, content=b'{"query": "bag"}', headers=headers)
        error = response.json()["error"]
        if (response.status_code, error.get("code"), error.get("details", {}).get("header")) != (
                415, "unsupported_content_type", "Content-Type") or "Content-Type" not in error["message"]:
            wrong[f"{method} {path}"] = (response.status_code, error)
    assert wrong == {}


def test_an_upload_route_takes_json_or_a_form_and_says_so(client):
    keys = new_tenant(client)
    response = client.post("/v1/search/crop", content=b'{"bbox": [0, 0, 1, 1]}',
                           headers={**auth(keys.publishable_key), "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"]["details"]["expected"] == ["application/json", "multipart/form-data"]


def test_an_empty_body_needs_no_content_type(client):
    keys = new_tenant(client)
    response = client.post("/v1/products/retry", headers=auth(keys.secret_key))
    assert response.status_code == 202


def test_form_fields_that_carry_json_are_small(client):
    keys = new_tenant(client)
    image = ("q.png", solid_png(32, 32), "image/png")
    huge_filters = json.dumps({"brand": ["x" * 100] * 10_000})
    response = client.post("/v1/search/image", data={"filters": [huge_filters] * 10}, files={"file": image},
                           headers=auth(keys.publishable_key))
    assert response.status_code == 413 and response.json()["error"]["code"] == "form_field_too_large"
    assert response.json()["error"]["details"] == {"max_bytes": MAX_FORM_FIELD_BYTES}
    just_over = json.dumps({"brand": "x" * MAX_FORM_FIELD_BYTES})
    response = client.post("/v1/search/crop", data={"filters": just_over, "bbox": "[0, 0, 9, 9]"},
                           files={"file": image}, headers=auth(keys.publishable_key))
    assert response.json()["error"]["code"] == "form_field_too_large"
    too_many = {f"x{i}": "1" for i in range(100)}
    response = client.post("/v1/search/image", data=too_many, files={"file": image}, headers=auth(keys.publishable_key))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_form")
