"""/openapi.json as a contract: the key each operation takes, the error envelope on every error status, typed
bodies, readable operation ids. (tests/integration/test_generated_client.py generates a client from it.)"""

import json
import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("contract"), admin_token="contract-admin-token-0123")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def document(app_client):
    return app_client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def admin_document(app_client):
    """The admin API's routes: out of the public document, in their own behind the token."""
    return app_client.get("/admin/v1/openapi.json", headers=auth("contract-admin-token-0123")).json()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_operation_ids_read_as_method_names(document, admin_document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id) for operation_id in ids), ids
    by_route = {(path, method): operation["operationId"] for path, method, operation in operations(document)}
    assert by_route[("/v1/search/text", "post")] == "search_text"
    assert by_route[("/v1/products", "post")] == "submit_products"
    admin_ids = {(path, method): operation["operationId"] for path, method, operation in operations(admin_document)}
    assert admin_ids[("/admin/v1/tenants/{tenant_id}/keys/rotate", "post")] == "admin_rotate_keys"
    assert not any(path.startswith("/admin/") for path, _ in by_route)


def test_each_operation_names_the_keys_it_takes(document, admin_document):
    schemes = document["components"]["securitySchemes"]
    assert {name: scheme["scheme"] for name, scheme in schemes.items()} == {
        "secretKey": "bearer", "publishableKey": "bearer", "adminToken": "bearer"}
    security = {(path, method): operation.get("security") for path, method, operation in operations(document)}
    assert security[("/v1/search/text", "post")] == [{"publishableKey": []}, {"secretKey": []}]
    assert security[("/v1/search/feedback", "post")] == [{"publishableKey": []}, {"secretKey": []}]
    assert security[("/v1/products", "post")] == [{"secretKey": []}]
    admin = {(path, method): operation.get("security") for path, method, operation in operations(admin_document)}
    assert admin[("/admin/v1/tenants", "post")] == [{"adminToken": []}]
    assert admin and all(admin.values())
    assert security[("/healthz", "get")] is None
    assert all(security[route] for route in security if route[0].startswith(("/v1/", "/admin/")))


def test_the_declared_keys_are_the_keys_the_routes_take(app_client, document):
    keys = new_tenant(app_client)
    for path, method, operation in operations(document):
        if not path.startswith("/v1/") or path == "/v1/keys/rotate":
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        takes_publishable = {"publishableKey": []} in operation["security"]
        answer = app_client.request(method, url, headers=auth(keys.publishable_key))
        assert (answer.status_code != 403) == takes_publishable, (method, path, answer.text)
        assert app_client.request(method, url).status_code == 401
        assert "401" in operation["responses"]


def test_every_error_status_answers_the_envelope(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and "$defs" not in text
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    for path, method, operation in operations(document):
        errors = {status: response for status, response in operation["responses"].items() if status >= "400"}
        assert all(r["content"]["application/json"]["schema"] == ENVELOPE for r in errors.values()), (path, method)
        if path.startswith("/v1/"):
            assert {"401", "403", "429", "503"} <= set(errors), (path, method)
        if "requestBody" in operation or "{" in path:
            assert {"422"} <= set(errors), (path, method)
    assert "409" in document["paths"]["/v1/search/similar"]["post"]["responses"]


def test_the_product_submission_body_is_a_product_or_a_batch(document):
    body = document["paths"]["/v1/products"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"] == [{"$ref": "#/components/schemas/ProductIn"},
                             {"$ref": "#/components/schemas/ProductBatchIn"}]
    batch = document["components"]["schemas"]["ProductBatchIn"]
    assert batch["properties"]["products"]["items"] == {"$ref": "#/components/schemas/ProductIn"}
    for path, method, operation in operations(document):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            schema = content["schema"]
            assert "$ref" in schema or "oneOf" in schema or "properties" in schema or "anyOf" in schema, \
                (path, method, media)


def test_answers_without_a_model_are_named_after_their_operation(document):
    titles = [content["schema"].get("title") for _, _, operation in operations(document)
              for status, response in operation["responses"].items() if status.startswith("2")
              for content in response.get("content", {}).values()]
    assert not [title for title in titles if title and title.startswith("Response ")]
    detect = document["paths"]["/v1/detect"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert detect == {"$ref": "#/components/schemas/DetectResponse"}
    assert document["components"]["schemas"]["DetectResponse"]["title"] == "DetectResponse"
