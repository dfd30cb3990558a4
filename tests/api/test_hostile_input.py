"""Inputs that used to reach a 500: each class answers a 4xx in the error envelope, on every endpoint."""

import json

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.conftest import auth, new_tenant
from trooply.api.body import StrictJsonRoute

PUBLISHABLE_BODY_ROUTES = ["/v1/search/text", "/v1/search/url", "/v1/search/image", "/v1/search/crop",
                           "/v1/search/multi", "/v1/search/fusion", "/v1/search/voice", "/v1/detect", "/v1/embed",
                           "/v1/search/feedback"]
UPLOAD_ONLY_ROUTES = ["/v1/search/image", "/v1/search/voice"]
SECRET_BODY_ROUTES = [("POST", "/v1/products"), ("PATCH", "/v1/products/p1"), ("POST", "/v1/rules")]
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 4000]


@pytest.fixture
def keys(client: TestClient):
    return new_tenant(client)


def send_json(client: TestClient, method: str, path: str, raw: str, key: str):
    return client.request(method, path, content=raw.encode("utf-8", "surrogatepass"),
                          headers={**auth(key), "Content-Type": "application/json"})


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = json.loads(response.content)["error"]  # parseable JSON even when it quotes bad input
    assert error["code"] == code and error["message"]
    return error


def test_deeply_nested_json_is_a_400_everywhere(client, keys):
    nested = "[" * 5_000 + "]" * 5_000
    for path in PUBLISHABLE_BODY_ROUTES:
        if path in UPLOAD_ONLY_ROUTES:  # JSON is not what these take: the header is named
            assert_error(send_json(client, "POST", path, nested, keys.publishable_key), 415, "unsupported_content_type")
        else:
            assert_error(send_json(client, "POST", path, nested, keys.publishable_key), 400, "json_too_deep")
    for method, path in SECRET_BODY_ROUTES:
        assert_error(send_json(client, method, path, nested, keys.secret_key), 400, "json_too_deep")
    # Deeper than the parser's own limit, on a route whose bodies may be large.
    deeper = "[" * 100_000 + "]" * 100_000
    assert_error(send_json(client, "POST", "/v1/products", deeper, keys.secret_key), 400, "json_too_deep")
    # Just under the parser's own limit, inside a field: still refused, by our depth check.
    deep_filter = '{"query": "x", "filters": {"attributes.a": ' + "[" * 500 + "]" * 500 + "}}"
    assert_error(send_json(client, "POST", "/v1/search/text", deep_filter, keys.publishable_key), 400,
                 "json_too_deep")


def test_lone_surrogates_are_refused_and_the_error_still_renders(client, keys):
    bad = "\\udfff"
    assert_error(send_json(client, "POST", "/v1/products", f'{{"id": "{bad}", "image_url": "http://127.0.0.1:9/a.png"}}',
                           keys.secret_key), 422, "invalid_text")
    for filters in (f'{{"{bad}": "x"}}', f'{{"attributes.{bad}": "x"}}', f'{{"brand": "{bad}"}}'):
        body = f'{{"query": "red bag", "filters": {filters}}}'
        assert_error(send_json(client, "POST", "/v1/search/text", body, keys.publishable_key), 422, "invalid_text")
        # The same inside a multipart field that carries JSON.
        form = client.post("/v1/search/crop", data={"filters": filters, "bbox": "[0,0,9,9]"},
                           files={"file": ("a.png", b"\x89PNG", "image/png")}, headers=auth(keys.publishable_key))
        assert_error(form, 422, "invalid_text")
    rule = f'{{"filters": {{"brand": "{bad}"}}, "weight": 0.5}}'
    assert_error(send_json(client, "POST", "/v1/rules", rule, keys.secret_key), 422, "invalid_text")
    nul = '{"id": "p1", "image_url": "http://127.0.0.1:9/a.png", "title": "a\\u0000b"}'
    assert_error(send_json(client, "POST", "/v1/products", nul, keys.secret_key), 422, "invalid_text")
    # A valid pair of surrogates is one character (an emoji) and is fine.
    ok = send_json(client, "POST", "/v1/products", '{"id": "mug-\\ud83d\\ude00", "image_url": "http://127.0.0.1:9/a.png"}',
                   keys.secret_key)
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_and_huge_numbers_are_a_422_naming_the_field(client, keys, number):
    pk, sk = keys.publishable_key, keys.secret_key
    error = assert_error(send_json(client, "POST", "/v1/search/text",
                                   f'{{"query": "bag", "filters": {{"price": {{"lte": {number}}}}}}}', pk),
                         422, "invalid_number")
    assert error["details"]["field"] == "filters.price.lte"
    products = ('{"products": [{"id": "ok", "image_url": "http://127.0.0.1:9/a.png"}, '
                f'{{"id": "bad", "image_url": "http://127.0.0.1:9/b.png", "attributes": {{"size": {number}}}}}]}}')
    error = assert_error(send_json(client, "POST", "/v1/products", products, sk), 422, "invalid_number")
    assert error["details"] == {"field": "products[1].attributes.size", "index": 1}
    for patch in (f'{{"popularity": {number}}}', f'{{"attributes": {{"x": {number}}}}}'):
        assert_error(send_json(client, "PATCH", "/v1/products/ok", patch, sk), 422, "invalid_number")
    bbox = f'[0, 0, {number}, 10]'
    assert_error(send_json(client, "POST", "/v1/search/crop",
                           f'{{"image_url": "http://127.0.0.1:9/a.png", "bbox": {bbox}}}', pk), 422, "invalid_number")
    form = client.post("/v1/search/crop", data={"bbox": bbox}, files={"file": ("a.png", b"\x89PNG", "image/png")},
                       headers=auth(pk))
    assert_error(form, 422, "invalid_number")
    assert_error(send_json(client, "POST", "/v1/embed",
                           f'{{"image_url": "http://127.0.0.1:9/a.png", "bounding_boxes": [{bbox}]}}', pk),
                 422, "invalid_number")
    # Nothing was accepted by the refused batch.
    assert client.get("/v1/products", headers=auth(sk)).json()["products"] == []


def test_json_bodies_are_strict_and_form_fields_are_converted(client, keys):
    pk, sk = keys.publishable_key, keys.secret_key
    for field, value in (("price", '"12"'), ("in_stock", '"yes"'), ("popularity", '"3"')):
        body = f'{{"id": "p1", "image_url": "http://127.0.0.1:9/a.png", "{field}": {value}}}'
        error = assert_error(send_json(client, "POST", "/v1/products", body, sk), 422, "validation_error")
        assert error["details"][0]["field"] == field
    assert_error(send_json(client, "POST", "/v1/search/text", '{"query": "bag", "limit": "10"}', pk),
                 422, "validation_error")
    assert_error(send_json(client, "POST", "/v1/search/text", '{"query": "bag", "explain": "yes"}', pk),
                 422, "validation_error")
    # Multipart fields are text by nature: "10" is read as a number there (the picture itself is refused).
    form = client.post("/v1/search/image", data={"limit": "10", "explain": "false"},
                       files={"file": ("a.png", b"not an image", "image/png")}, headers=auth(pk))
    assert_error(form, 422, "unsupported_media_type")


def test_nested_attribute_filters_are_refused(client, keys):
    body = '{"query": "bag", "filters": {"attributes.a.b": "x"}}'
    error = assert_error(send_json(client, "POST", "/v1/search/text", body, keys.publishable_key), 422,
                         "invalid_filter")
    assert "not nested" in error["message"]


@pytest.mark.parametrize("product_id", ["a/b", "../a-0", "  spaced  ", "tab\tid", "..", "q?x", "frag#1", "back\\slash"])
def test_unaddressable_ids_are_refused_at_post(client, keys, product_id):
    response = client.post("/v1/products", json={"id": product_id, "image_url": "http://127.0.0.1:9/a.png"},
                           headers=auth(keys.secret_key))
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == "id"


def test_control_characters_in_a_product_path_are_a_422(client, keys):
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/v1/products/a%00b", json={"title": "t"}, headers=auth(keys.secret_key))
        assert_error(response, 422, "validation_error")


def test_every_accepted_id_is_addressable(client, keys):
    sk = auth(keys.secret_key)
    for product_id in ("sku 1", "чашка-1", "a:b@c", "50%off", "x.y"):
        assert client.post("/v1/products", json={"id": product_id, "image_url": "http://127.0.0.1:9/a.png"},
                           headers=sk).status_code == 202
        quoted = product_id.replace("%", "%25").replace(" ", "%20")
        assert client.get(f"/v1/products/{quoted}", headers=sk).json()["id"] == product_id
        assert client.patch(f"/v1/products/{quoted}", json={"title": "t"}, headers=sk).status_code == 200
        assert client.delete(f"/v1/products/{quoted}", headers=sk).status_code == 204


@pytest.mark.parametrize("url", ["http://user:pass@127.0.0.1:9/a.png", "http://xn--/p.png", "ftp://127.0.0.1/a.png"])
def test_unfetchable_image_urls_are_refused_at_post(client, keys, url):
    response = client.post("/v1/products", json={"id": "p1", "image_url": url}, headers=auth(keys.secret_key))
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"] == "image_url"


def test_a_bug_answers_500_in_the_envelope_without_breaking_the_connection(client):
    router = APIRouter(route_class=StrictJsonRoute)

    @router.post("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    client.app.include_router(router)
    # raise_server_exceptions is on: an exception escaping the app would fail this call instead.
    response = client.post("/boom")
    assert_error(response, 500, "internal_error")
    assert response.headers["x-request-id"]
    assert client.get("/healthz").status_code == 200
