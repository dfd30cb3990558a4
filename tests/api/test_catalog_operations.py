"""The catalogue operations the portal stands on: counts by status, retrying failures, recent jobs, a product's
stored signals, file import and resumable re-posts — each for the secret key only and inside its tenant."""

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("catalog-ops")))) as client, \
            ImageServer() as images:
        images.add_image("/red.png", solid_png(80, 40, (200, 30, 35)))
        images.add_image("/navy.png", solid_png(40, 40, (20, 30, 80)))
        tenant, other = new_tenant(client, "shop"), new_tenant(client, "other")
        products = [{"id": "red", "image_url": images.url("/red.png"), "category": "shoes", "price": 10.0},
                    {"id": "navy", "image_url": images.url("/navy.png"), "category": "shoes"},
                    {"id": "lamp", "image_url": images.url("/navy.png"), "category": "lamps"},
                    {"id": "gone-1", "image_url": images.url("/gone.png"), "category": "shoes"},
                    {"id": "gone-2", "image_url": images.url("/gone.png")}]
        job = client.post("/v1/products", json={"products": products}, headers=auth(tenant.secret_key)).json()
        wait_for_job(client, tenant.secret_key, job["job_id"])
        yield client, tenant, other, images


def test_stats_count_products_by_status_code_and_category(shop) -> None:
    client, tenant, other, _ = shop
    stats = client.get("/v1/catalog/stats", headers=auth(tenant.secret_key)).json()
    assert stats == {"counts": {"pending": 0, "indexed": 3, "failed": 2}, "total": 5, "allowance": 1000,
                     "failures": {"image_not_found": 2},
                     "categories": [{"category": "shoes", "count": 3}, {"category": "lamps", "count": 1}]}
    assert client.get("/v1/catalog/stats", headers=auth(other.secret_key)).json()["total"] == 0
    assert client.get("/v1/catalog/stats", headers=auth(tenant.publishable_key)).status_code == 403


def test_product_detail_carries_its_family_and_signals_their_stored_colour(shop) -> None:
    client, tenant, other, _ = shop
    product = client.get("/v1/products/red", headers=auth(tenant.secret_key)).json()
    assert (product["family"], product["family_confidence"]) == ("footwear", 1.0)
    signals = client.get("/v1/products/red/signals", headers=auth(tenant.secret_key)).json()
    image = signals.pop("image")
    assert signals == {"product_id": "red", "status": "indexed", "family": "footwear", "family_confidence": 1.0}
    assert (image["width"], image["height"], image["aspect_ratio"]) == (80, 40, 2.0)
    assert len(image["colour_histogram"]) == 64 and abs(sum(image["colour_histogram"]) - 1) < 0.01
    assert not image["colour_stale"] and abs(sum(c["share"] for c in image["colour_palette"]) - 1) < 0.01
    main = image["colour_swatch"][0]
    assert (main["name"], main["family"]) == ("red", "red") and main["share"] == main["overlap"] > 0.9

    failed = client.get("/v1/products/gone-1/signals", headers=auth(tenant.secret_key)).json()
    assert (failed["status"], failed["image"]) == ("failed", None)
    missing = client.get("/v1/products/red/signals", headers=auth(other.secret_key))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "product_not_found"


def test_retry_requeues_failed_products_as_a_new_job(shop) -> None:
    client, tenant, other, images = shop
    key = auth(tenant.secret_key)
    # Another tenant cannot reach these products: they are "not found" to it.
    foreign = client.post("/v1/products/retry", json={"ids": ["gone-1"]}, headers=auth(other.secret_key)).json()
    assert foreign == {"job_id": None, "requeued": 0, "skipped": [{"id": "gone-1", "reason": "product_not_found"}]}

    images.add_image("/gone.png", solid_png(30, 30, (0, 200, 0)))  # the host fixed its image
    answer = client.post("/v1/products/retry", json={"ids": ["gone-1", "red", "nope"]}, headers=key)
    assert answer.status_code == 202
    body = answer.json()
    assert body["requeued"] == 1 and body["skipped"] == [{"id": "red", "reason": "not_failed"},
                                                          {"id": "nope", "reason": "product_not_found"}]
    job = wait_for_job(client, tenant.secret_key, body["job_id"])
    assert job["counts"] == {"pending": 0, "indexed": 1, "failed": 0}

    everything = client.post("/v1/products/retry", headers=key).json()  # no body: every failed product
    assert everything["requeued"] == 1
    wait_for_job(client, tenant.secret_key, everything["job_id"])
    assert client.post("/v1/products/retry", json={}, headers=key).json() == {"job_id": None, "requeued": 0,
                                                                               "skipped": []}
    for bad in ({"ids": []}, {"ids": "gone-2"}, {"ids": [1]}, {"all": True}):
        refused = client.post("/v1/products/retry", json=bad, headers=key)
        assert refused.status_code == 422, (bad, refused.text)

    jobs = client.get("/v1/jobs", params={"limit": 2}, headers=key).json()["jobs"]
    assert [job["job_id"] for job in jobs] == [everything["job_id"], body["job_id"]]
    assert jobs[0]["status"] == "completed" and jobs[0]["total"] == 1
    assert client.get("/v1/jobs", headers=auth(other.secret_key)).json() == {"jobs": []}


def test_skip_unchanged_answers_stored_products_unchanged_and_queues_nothing(shop) -> None:
    client, tenant, _, images = shop
    key = auth(tenant.secret_key)
    same = {"id": "red", "image_url": images.url("/red.png"), "category": "shoes", "price": 10}
    answer = client.post("/v1/products?skip_unchanged=true", json=same, headers=key).json()
    assert answer == {"job_id": None, "accepted": 0, "rejected": 0, "unchanged": 1,
                      "products": [{"id": "red", "index": 0, "status": "unchanged", "error": None}]}
    changed = client.post("/v1/products?skip_unchanged=true", json={**same, "price": 11.0}, headers=key).json()
    assert (changed["accepted"], changed["unchanged"]) == (1, 0) and changed["job_id"]
    wait_for_job(client, tenant.secret_key, changed["job_id"])
    # Without the flag, a re-post is queued as before (the image behind the URL may have changed).
    again = client.post("/v1/products", json={**same, "price": 11.0}, headers=key).json()
    assert (again["accepted"], again["unchanged"]) == (1, 0)
    wait_for_job(client, tenant.secret_key, again["job_id"])


def test_import_of_a_csv_file_queues_valid_rows_and_names_bad_ones(shop) -> None:
    client, tenant, _, images = shop
    csv = ("id,image_url,title,price,in_stock,attributes.colour\n"
           f"csv-1,{images.url('/red.png')},One,5,true,red\n"
           f"csv-2,{images.url('/red.png')},Two,abc,true,red\n"
           f"csv-3,{images.url('/navy.png')},Three,7,no,navy\n"
           f"csv-1,{images.url('/red.png')},Again,5,true,red\n")
    upload = {"file": ("products.csv", csv.encode(), "text/csv")}
    key = auth(tenant.secret_key)
    report = client.post("/v1/imports", files=upload, headers=key).json()
    assert (report["rows"], report["accepted"], report["unchanged"], len(report["jobs"])) == (4, 2, 0, 1)
    assert [(r["line"], r["product_id"], r["code"], r["field"]) for r in report["rejected"]] == [
        (3, "csv-2", "validation_error", "price"), (5, "csv-1", "duplicate_id", "id")]
    wait_for_job(client, tenant.secret_key, report["jobs"][0])
    product = client.get("/v1/products/csv-3", headers=key).json()
    assert product["metadata"]["in_stock"] is False and product["metadata"]["attributes"] == {"colour": "navy"}

    # The same file again resumes: nothing changed, nothing is queued.
    again = client.post("/v1/imports", files=upload, headers=key).json()
    assert (again["accepted"], again["unchanged"], again["jobs"]) == (0, 2, [])
    forced = client.post("/v1/imports", files=upload, data={"skip_unchanged": "false"}, headers=key).json()
    assert (forced["accepted"], forced["unchanged"]) == (2, 0)
    wait_for_job(client, tenant.secret_key, forced["jobs"][0])


def test_import_of_jsonl_and_the_file_level_refusals(shop) -> None:
    client, tenant, _, images = shop
    key = auth(tenant.secret_key)
    lines = [json.dumps({"id": "json-1", "image_url": images.url("/red.png"), "price": 3}), "{oops",
             json.dumps({"id": "json-2", "image_url": images.url("/red.png"), "in_stock": "yes"})]
    data = "\n".join(lines).encode()
    report = client.post("/v1/imports", files={"file": ("feed.txt", data)}, data={"format": "jsonl"}, headers=key)
    assert report.status_code == 202
    assert [(r["line"], r["code"]) for r in report.json()["rejected"]] == [(2, "invalid_json"), (3, "validation_error")]
    wait_for_job(client, tenant.secret_key, report.json()["jobs"][0])

    def refused(**kwargs) -> tuple[int, str]:
        answer = client.post("/v1/imports", headers=key, **kwargs)
        return answer.status_code, answer.json()["error"]["code"]

    assert refused(files={"file": ("feed.xlsx", b"<x/>")}) == (422, "unsupported_import_format")
    assert refused(files={"file": ("feed.xml", b"<x/>")}) == (422, "invalid_feed")  # XML, but not a feed
    assert refused(files={"file": ("p.csv", b"")}) == (422, "empty_upload")
    assert refused(files={"file": ("p.csv", b"\xff\xfe\x00")}) == (422, "invalid_import_file")
    assert refused(files={"file": ("p.csv", b"id,img\n1,2\n")}) == (422, "invalid_import_file")
    assert refused(files={"file": ("p.csv", b"id,image_url\n")}, data={"format": "xml"}) == (422, "validation_error")
    assert refused(json={"products": []}) == (415, "unsupported_content_type")
    assert refused(data={"format": "csv"}) == (422, "file_required")
    assert client.post("/v1/imports", files={"file": ("p.csv", b"id\n")},
                       headers=auth(tenant.publishable_key)).status_code == 403


def test_import_past_the_plan_cap_rejects_the_rows_it_cannot_hold(tmp_path) -> None:
    settings = make_settings(tmp_path, free_plan_max_products=2)
    with TestClient(create_app(settings)) as client, ImageServer() as images:
        images.add_image("/a.png", solid_png(20, 20))
        tenant = new_tenant(client)
        csv = "id,image_url\n" + "".join(f"p{i},{images.url('/a.png')}\n" for i in range(4))
        report = client.post("/v1/imports", files={"file": ("p.csv", csv.encode())}, headers=auth(tenant.secret_key))
        body = report.json()
        assert body["accepted"] == 2
        assert [(r["line"], r["code"]) for r in body["rejected"]] == [(4, "quota_exceeded"), (5, "quota_exceeded")]
