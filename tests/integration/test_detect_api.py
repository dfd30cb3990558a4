"""/v1/detect, /v1/embed, detection inside search, and usage metering, through HTTP on real images.
Geometry and contracts only: with random test weights no class accuracy is claimed."""

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.unit.vision.test_detection import composite
from trooply.api.app import create_app
from trooply.vision.decode import decode_image
from trooply.vision.detection import area_ratio, center_distance_ratio, iou


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def big_scene_jpeg() -> bytes:
    """The scene at 4000x3000: decoded at 1024 px, yet every size and box the API gives is in these pixels."""
    out = io.BytesIO()
    SCENE.resize((4000, 3000)).save(out, "JPEG", quality=80)
    return out.getvalue()


def two_tone_png(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (width // 2, height // 2, width, height))
    return png(image)


SCENE, OBJECTS = composite()
SCENE_PNG = png(SCENE)
BIG_SCENE = big_scene_jpeg()
DEGENERATE = [(39000, 1), (1, 39000), (2, 2)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("detect"), free_plan_monthly_item_calls=200)
    with TestClient(create_app(settings)) as client, ImageServer() as server:
        server.add_image("/scene.png", SCENE_PNG)
        products = []
        for i in range(6):
            server.add_image(f"/p{i}.png", two_halves_png(64, 64, (i * 40, 30, 60), (200, 20 + i * 30, 90)))
            products.append({"id": f"p{i}", "image_url": server.url(f"/p{i}.png"), "category": "bags"})
        creds = new_tenant(client)
        job = client.post("/v1/products", json={"products": products}, headers=auth(creds.secret_key)).json()
        wait_for_job(client, creds.secret_key, job["job_id"])
        yield client, server, creds


def post(client, creds, path, **kwargs):
    return client.post(path, headers=auth(creds.publishable_key), **kwargs)


def test_detections_are_inside_sorted_capped_suppressed_and_their_ratios_add_up(shop):
    client, server, creds = shop
    response = post(client, creds, "/v1/detect", json={"image_url": server.url("/scene.png"), "top_k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    detections = body["detections"]
    assert (body["image_width"], body["image_height"]) == (640, 480)
    assert 1 <= len(detections) <= 5
    assert [d["score"] for d in detections] == sorted((d["score"] for d in detections), reverse=True)
    for d in detections:
        x1, y1, x2, y2 = d["bounding_box"]
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 and 0 <= d["score"] <= 1
        assert d["area_ratio"] == pytest.approx(area_ratio((x1, y1, x2, y2), 640, 480), abs=1e-3)
        assert d["center_distance_ratio"] == pytest.approx(center_distance_ratio((x1, y1, x2, y2), 640, 480), abs=1e-3)
    for i, a in enumerate(detections):
        for b in detections[i + 1:]:
            assert a["class_id"] != b["class_id"] or iou(a["bounding_box"], b["bounding_box"]) <= 0.5
    assert set(body["timings"]) == {"proposals_ms", "scoring_ms", "nms_ms"}


def test_classes_filter_top_k_caps_and_the_annotated_png_has_the_image_size(shop):
    client, _, creds = shop
    everything = post(client, creds, "/v1/detect", files={"file": ("s.png", SCENE_PNG)}, data={"top_k": "50"}).json()
    some_class = everything["detections"][0]["class_id"]
    only = post(client, creds, "/v1/detect", files={"file": ("s.png", SCENE_PNG)},
                data={"top_k": "50", "classes": json.dumps([some_class]), "return_image": "true"}).json()
    assert only["detections"] and {d["class_id"] for d in only["detections"]} == {some_class}
    assert len(post(client, creds, "/v1/detect", files={"file": ("s.png", SCENE_PNG)},
                    data={"top_k": "1"}).json()["detections"]) == 1
    annotated = Image.open(io.BytesIO(base64.b64decode(only["annotated_image"])))
    assert annotated.format == "PNG" and annotated.size == (640, 480)
    assert "annotated_image" not in everything


@pytest.mark.parametrize("fields, code", [
    ({"top_k": "0"}, "validation_error"), ({"top_k": "51"}, "validation_error"), ({}, "validation_error"),
    ({"top_k": "3", "classes": "[3, 12]"}, "unknown_class"),
])
def test_detect_input_errors(shop, fields, code):
    client, _, creds = shop
    response = post(client, creds, "/v1/detect", files={"file": ("s.png", SCENE_PNG)}, data=fields)
    assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_embed_given_boxes_returns_catalogue_space_vectors_tags_and_text_scores(shop):
    client, _, creds = shop
    boxes = [list(OBJECTS[0]), [0, 0, 640, 480]]
    body = post(client, creds, "/v1/embed", files={"file": ("s.png", SCENE_PNG)},
                data={"bounding_boxes": json.dumps(boxes), "text": '["a red bag", "blue shoes", "a watch"]',
                      "with_tag": "true"}).json()
    assert body["bounding_boxes"] == boxes
    vectors = np.asarray(body["embeddings"])
    assert vectors.shape == (2, 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    whole = client.app.state.container.encoder.encode_images([decode_image(SCENE_PNG, 10**8).image])[0]
    assert np.allclose(vectors[1], whole, atol=1e-4), "the same space (and model) as catalogue vectors"
    assert [len(row) for row in body["text_relevance_scores"]] == [3, 3]
    assert all(len(tag) == 2 and isinstance(tag[0], str) and 0 <= tag[1] <= 1 for tag in body["tags"])
    single = post(client, creds, "/v1/embed", json={"image_url": None, "bounding_boxes": boxes, "text": "a red bag",
                                                     "with_embedding": False}, files=None)
    assert single.status_code == 422  # no image at all
    one_text = post(client, creds, "/v1/embed", files={"file": ("s.png", SCENE_PNG)},
                    data={"bounding_boxes": json.dumps(boxes), "text": "a red bag", "with_embedding": "false"}).json()
    assert "embeddings" not in one_text and len(one_text["text_relevance_scores"]) == 2
    assert all(isinstance(score, float) for score in one_text["text_relevance_scores"])


def test_embed_without_boxes_detects_them(shop):
    client, server, creds = shop
    body = post(client, creds, "/v1/embed", json={"image_url": server.url("/scene.png"), "top_k": 3}).json()
    assert 1 <= len(body["bounding_boxes"]) <= 3 and len(body["embeddings"]) == len(body["bounding_boxes"])


@pytest.mark.parametrize("boxes, code", [
    ([[0, 0, 100, 100], [600, 0, 700, 100]], "bbox_out_of_bounds"),
    ([[0, 0, 100, 100], [50, 50, 50, 90]], "bbox_inverted"),
    ([[0, 0, 100, 100], [10, 10, 12, 12]], "bbox_too_small"),
])
def test_bad_boxes_are_422_naming_their_index(shop, boxes, code):
    client, _, creds = shop
    response = post(client, creds, "/v1/embed", files={"file": ("s.png", SCENE_PNG)},
                    data={"bounding_boxes": json.dumps(boxes)})
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == code
    assert error["details"] == {"index": 1} and error["message"].startswith("bounding_boxes[1]")


def inside(box, width, height) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


@pytest.mark.parametrize("size", DEGENERATE)
def test_detect_on_degenerate_shapes_answers_boxes_inside_the_image(shop, size):
    client, _, creds = shop
    response = post(client, creds, "/v1/detect", files={"file": ("t.png", two_tone_png(*size))},
                    data={"top_k": "10", "return_image": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["image_width"], body["image_height"]) == size and body["detections"]
    for d in body["detections"]:
        assert inside(d["bounding_box"], *size) and 0 < d["area_ratio"] <= 1, d


@pytest.mark.parametrize("size", DEGENERATE)
def test_embed_without_boxes_on_degenerate_shapes_embeds_what_it_detects(shop, size):
    client, _, creds = shop
    response = post(client, creds, "/v1/embed", files={"file": ("t.png", two_tone_png(*size))}, data={"top_k": "3"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert 1 <= len(body["bounding_boxes"]) <= 3 and len(body["embeddings"]) == len(body["bounding_boxes"])
    assert all(inside(box, *size) for box in body["bounding_boxes"])


def test_a_large_photo_is_described_in_its_own_pixels(shop):
    client, _, creds = shop
    body = post(client, creds, "/v1/detect", files={"file": ("big.jpg", BIG_SCENE)},
                data={"top_k": "10", "return_image": "true"}).json()
    assert (body["image_width"], body["image_height"]) == (4000, 3000)
    for d in body["detections"]:
        assert inside(d["bounding_box"], 4000, 3000)
        assert d["area_ratio"] == pytest.approx(area_ratio(d["bounding_box"], 4000, 3000), abs=1e-3)
    assert any(d["bounding_box"][2] > 2000 for d in body["detections"]), "boxes are not in the decoded 1024 px"
    # Drawn on the decoded pixels: a full-size PNG of a large photo would be tens of megabytes.
    assert Image.open(io.BytesIO(base64.b64decode(body["annotated_image"]))).size == (1024, 768)
    quarter = [2000, 1500, 4000, 3000]
    embedded = post(client, creds, "/v1/embed", files={"file": ("big.jpg", BIG_SCENE)},
                    data={"bounding_boxes": json.dumps([quarter])})
    assert embedded.status_code == 200 and embedded.json()["bounding_boxes"] == [quarter]
    cropped = post(client, creds, "/v1/search/crop", files={"file": ("big.jpg", BIG_SCENE)},
                   data={"bbox": json.dumps(quarter)})
    assert cropped.status_code == 200, cropped.text
    outside = post(client, creds, "/v1/search/crop", files={"file": ("big.jpg", BIG_SCENE)},
                   data={"bbox": "[2000, 1500, 4001, 3000]"})
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "bbox_out_of_bounds"
    detected = post(client, creds, "/v1/search/image", files={"file": ("big.jpg", BIG_SCENE)},
                    data={"detect": "true", "profile": "accessories"}).json()
    assert inside(detected["detection"]["bounding_box"], 4000, 3000)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_box_coordinates_are_422_not_a_crash(shop, number):
    client, _, creds = shop
    box = f"[0, 0, {number}, 100]"
    embedded = post(client, creds, "/v1/embed", files={"file": ("s.png", SCENE_PNG)},
                    data={"bounding_boxes": f"[{box}]"})
    cropped = post(client, creds, "/v1/search/crop", files={"file": ("s.png", SCENE_PNG)}, data={"bbox": box})
    assert (embedded.status_code, cropped.status_code) == (422, 422), (embedded.text, cropped.text)


def test_search_with_detect_runs_on_the_most_prominent_item_and_reports_it(shop):
    client, server, creds = shop
    plain = post(client, creds, "/v1/search/url",
                 json={"image_url": server.url("/scene.png"), "profile": "accessories"}).json()
    assert "detection" not in plain
    detected = post(client, creds, "/v1/search/url", json={"image_url": server.url("/scene.png"), "detect": True,
                                                            "profile": "accessories"}).json()
    used = detected["detection"]
    assert set(used) == {"class_id", "class_name", "score", "bounding_box"}
    x1, y1, x2, y2 = used["bounding_box"]
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    restricted = post(client, creds, "/v1/search/image", files={"file": ("s.png", SCENE_PNG)},
                      data={"detect": "true", "detect_class": str(used["class_id"]), "profile": "accessories"}).json()
    assert restricted["detection"]["class_id"] == used["class_id"]


def test_usage_counts_detect_and_embed_and_the_allowance_is_enforced(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, free_plan_monthly_item_calls=3))) as client:
        creds = new_tenant(client)
        for path, data in (("/v1/detect", {"top_k": "2"}), ("/v1/embed", {"bounding_boxes": "[[0,0,64,64]]"}),
                           ("/v1/embed", {"bounding_boxes": "[[0,0,64,64]]"})):
            assert post(client, creds, path, files={"file": ("s.png", SCENE_PNG)}, data=data).status_code == 200
        refused = post(client, creds, "/v1/detect", files={"file": ("s.png", SCENE_PNG)}, data={"top_k": "2"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"
        usage = client.get("/v1/usage", headers=auth(creds.secret_key)).json()
        assert usage["counts"] == {"detect": 1, "embed": 2} and usage["allowance"] == 3 and usage["remaining"] == 0
        other = new_tenant(client, "other")
        assert client.get("/v1/usage", headers=auth(other.secret_key)).json()["counts"] == {"detect": 0, "embed": 0}
        assert client.get("/v1/usage", headers=auth(creds.publishable_key)).status_code == 403
