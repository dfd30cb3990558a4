"""A tenant's `language` through the admin API: set like its other settings, its products' words re-tokenised in
the background, its queries tokenised in it; an unknown language is refused."""

import time

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app

TOKEN = "t" * 32
PRODUCTS = [{"id": "k1", "title": "Rote Jacke für Kinder", "category": "apparel"},
            {"id": "k2", "title": "Blaue Mütze für Kinder", "category": "apparel"},
            {"id": "a1", "title": "Schwarze Tasche aus Leder", "category": "bags"}]


def words_only(client: TestClient, key: str, query: str) -> list[str]:
    answer = client.post("/v1/search/text", json={"query": query, "profile": "accessories", "keyword_weight": 1},
                         headers=auth(key))
    assert answer.status_code == 200, answer.text
    return sorted(result["id"] for result in answer.json()["results"])


def tenant_settings(client: TestClient, tenant_id: str) -> dict:
    return client.get(f"/admin/v1/tenants/{tenant_id}", headers=auth(TOKEN)).json()


def test_a_tenant_s_language_retokenises_its_words_and_its_queries(tmp_path) -> None:
    with (TestClient(create_app(make_settings(tmp_path, admin_token=TOKEN))) as client, ImageServer() as images):
        tenant = new_tenant(client, "laden")
        products = []
        for i, product in enumerate(PRODUCTS):
            images.add_image(f"/{i}.png", solid_png(40 + 10 * i, 40, (60 * i, 90, 200 - 60 * i)))
            products.append({**product, "image_url": images.url(f"/{i}.png")})
        job = client.post("/v1/products", json={"products": products}, headers=auth(tenant.secret_key)).json()
        assert wait_for_job(client, tenant.secret_key, job["job_id"])["counts"]["indexed"] == len(PRODUCTS)
        shown = tenant_settings(client, tenant.tenant_id)
        assert shown["language"] == shown["words_language"] == "english"
        assert words_only(client, tenant.publishable_key, "Kind") == []  # English: "kinder" is not "kind"

        patched = client.patch(f"/admin/v1/tenants/{tenant.tenant_id}", json={"language": "german"},
                               headers=auth(TOKEN))
        assert patched.status_code == 200 and patched.json()["language"] == "german"
        deadline = time.monotonic() + 30
        while tenant_settings(client, tenant.tenant_id)["words_language"] != "german":
            assert time.monotonic() < deadline, "the re-tokenise never finished"
            time.sleep(0.05)
        assert words_only(client, tenant.publishable_key, "Kind") == ["k1", "k2"]
        assert words_only(client, tenant.publishable_key, "Taschen") == ["a1"]
        stop_words = client.post("/v1/search/text", json={"query": "und die", "profile": "accessories"},
                                 headers=auth(tenant.publishable_key)).json()
        assert stop_words["keywords_fallback"] == "no_searchable_words"  # German stop words now

        images.add_image("/new.png", solid_png(90, 40, (10, 10, 10)))
        shoes = {"id": "k3", "title": "Schuhe für Kinder", "category": "apparel", "image_url": images.url("/new.png")}
        job = client.post("/v1/products", json={"products": [shoes]}, headers=auth(tenant.secret_key)).json()
        assert wait_for_job(client, tenant.secret_key, job["job_id"])["counts"]["indexed"] == 1
        assert words_only(client, tenant.publishable_key, "Kind") == ["k1", "k2", "k3"]  # written in German


def test_an_unknown_language_is_refused_and_nothing_changes(tmp_path) -> None:
    with TestClient(create_app(make_settings(tmp_path, admin_token=TOKEN))) as client:
        tenant = new_tenant(client, "shop")
        for value in ("klingon", "English", "", 3, None):
            answer = client.patch(f"/admin/v1/tenants/{tenant.tenant_id}", json={"language": value},
                                  headers=auth(TOKEN))
            assert answer.status_code == 422, (value, answer.text)
            body = answer.json()
            assert body["error"]["code"] == "validation_error"
            if value is not None:
                assert "language" in answer.text
        assert tenant_settings(client, tenant.tenant_id)["language"] == "english"
