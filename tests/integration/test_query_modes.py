"""Every query mode through HTTP: crop, multi-image, fusion and voice, their 422s, and query privacy."""

import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from tests.conftest import auth, make_settings, new_tenant
from tests.support.images import solid_png, two_halves_png
from tests.support.speech import encode, silence_wav, spoken_wav
from trooply.api.app import create_app
from trooply.ranking.engine import clip_signal
from trooply.search.models import SearchLog
from trooply.vision.decode import decode_image

RED, BLUE = (220, 30, 30), (30, 40, 220)
HALVES = two_halves_png(200, 100, RED, BLUE)


@pytest.fixture(scope="module")
def shop(shop_factory):
    products = [{"id": f"p{i}", "image_url": f"/p{i}.png", "category": "shoes" if i % 2 else "bags",
                 "price": 20.0 + i} for i in range(12)]
    images = {"/halves.png": HALVES, "/red.png": solid_png(90, 90, RED), "/blue.png": solid_png(90, 90, BLUE),
              **{f"/p{i}.png": two_halves_png(80, 80, (i * 20, 90, 40), (10, 255 - i * 20, 200)) for i in range(12)}}
    opened = shop_factory({"acme": products}, images=images, routes=lambda server: server.add_status("/gone.png", 404))
    return opened.client, opened.server, opened.tenants["acme"]


def search(client, creds, mode, **kwargs):
    return client.post(f"/v1/search/{mode}", headers=auth(creds.publishable_key), **kwargs)


def ranked(response) -> list[tuple[str, float]]:
    assert response.status_code == 200, response.text
    return [(r["id"], r["similarity_score"]) for r in response.json()["results"]]


def assert_same_ranking(response, other) -> None:
    """Same products in the same order with the same scores, up to float rounding of re-normalisation."""
    mine, theirs = ranked(response), ranked(other)
    assert [i for i, _ in mine] == [i for i, _ in theirs]
    assert np.allclose([s for _, s in mine], [s for _, s in theirs], atol=2e-4)


def test_crop_of_each_half_changes_the_query_and_the_whole_image_equals_plain_search(shop):
    client, server, creds = shop
    left = search(client, creds, "crop", json={"image_url": server.url("/halves.png"), "bbox": [0, 0, 100, 100]})
    right = search(client, creds, "crop", files={"file": ("q", HALVES)}, data={"bbox": "[100, 0, 200, 100]"})
    assert left.json()["mode"] == "crop" and ranked(left) != ranked(right)
    whole = search(client, creds, "crop", files={"file": ("q", HALVES)}, data={"bbox": json.dumps([0, 0, 200, 100])})
    plain = search(client, creds, "image", files={"file": ("q", HALVES)})
    assert ranked(whole) == ranked(plain)


@pytest.mark.parametrize("bbox, code", [
    ([50, 0, 10, 100], "bbox_inverted"),
    ([0, 0, 201, 100], "bbox_out_of_bounds"),
    ([-1, 0, 50, 50], "bbox_out_of_bounds"),
    ([10, 10, 13, 60], "bbox_too_small"),
])
def test_crop_boxes_that_make_no_sense_are_422_saying_which(shop, bbox, code):
    client, _, creds = shop
    response = search(client, creds, "crop", files={"file": ("q", HALVES)}, data={"bbox": json.dumps(bbox)})
    assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_multi_image_searches_on_the_normalised_centroid(shop):
    client, server, creds = shop
    container = client.app.state.container
    response = search(client, creds, "multi", json={"image_urls": [server.url("/red.png"), server.url("/blue.png")],
                                                    "limit": 12})
    vectors = container.encoder.encode_images([decode_image(solid_png(90, 90, c), 10**8).image for c in (RED, BLUE)])
    centroid = vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0))
    expected = {h.product_id: clip_signal(h.score) for h in container.index.query(creds.tenant_id, centroid, 12)}
    body = response.json()
    got = {r["id"]: r["_match_breakdown"]["signals"]["clip"] for r in body["results"]}
    assert body["mode"] == "multi" and len(got) + len(body["gated"]) == 12
    assert all(abs(got[pid] - expected[pid]) < 2e-4 for pid in got), (got, expected)
    uploaded = search(client, creds, "multi", files=[("files", ("a", solid_png(90, 90, RED))),
                                                     ("files", ("b", solid_png(90, 90, BLUE)))], data={"limit": "12"})
    assert_same_ranking(uploaded, response)


@pytest.mark.parametrize("count", [1, 6])
def test_multi_image_takes_two_to_five_images(shop, count):
    client, server, creds = shop
    response = search(client, creds, "multi", json={"image_urls": [server.url("/red.png")] * count})
    assert response.status_code == 422 and response.json()["error"]["code"] == "wrong_image_count"


def test_a_failing_image_in_a_multi_search_names_its_index(shop):
    client, server, creds = shop
    response = search(client, creds, "multi", json={"image_urls": [server.url("/red.png"), server.url("/gone.png")]})
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "image_not_found"
    assert error["details"] == {"index": 1} and error["message"].startswith("image 1:")


def test_fusion_ends_equal_pure_image_and_pure_text_search(shop):
    client, server, creds = shop
    url = server.url("/halves.png")
    pure_image = search(client, creds, "url", json={"image_url": url, "limit": 12})
    pure_text = search(client, creds, "text", json={"query": "red leather handbag", "limit": 12})
    at_one = search(client, creds, "fusion", json={"image_url": url, "text": "red leather handbag",
                                                    "image_weight": 1.0, "limit": 12})
    at_zero = search(client, creds, "fusion", files={"file": ("q", HALVES)},
                     data={"text": "red leather handbag", "image_weight": "0", "limit": "12"})
    halfway = search(client, creds, "fusion", json={"image_url": url, "text": "red leather handbag", "limit": 12})
    assert_same_ranking(at_one, pure_image)
    assert_same_ranking(at_zero, pure_text)
    assert ranked(halfway) not in (ranked(pure_image), ranked(pure_text))
    assert halfway.json()["mode"] == "fusion"


@pytest.mark.parametrize("body, code", [
    ({"text": "x", "image_weight": 1.5, "image_url": "http://127.0.0.1:1/x.png"}, "validation_error"),
    ({"text": "x"}, "image_required"),
    ({"image_url": "http://127.0.0.1:1/x.png"}, "validation_error"),
])
def test_fusion_input_errors(shop, body, code):
    client, _, creds = shop
    response = search(client, creds, "fusion", json=body)
    assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_one_image_modes_refuse_both_a_url_and_a_file(shop):
    client, server, creds = shop
    response = search(client, creds, "crop", files={"file": ("q", HALVES)},
                      data={"image_url": server.url("/halves.png"), "bbox": "[0, 0, 50, 50]"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "image_required"


@pytest.mark.parametrize("suffix, codec", [(".wav", ()), (".mp3", ()), (".webm", ("-c:a", "libopus")),
                                           (".ogg", ("-c:a", "libvorbis"))])
def test_voice_search_transcribes_real_speech_in_every_format(shop, tmp_path, suffix, codec):
    client, _, creds = shop
    wav = spoken_wav("blue running shoes under fifty dollars", tmp_path)
    audio = wav.read_bytes() if suffix == ".wav" else encode(wav, suffix, *codec)
    response = search(client, creds, "voice", files={"audio": (f"clip{suffix}", audio)},
                      data={"limit": "5", "profile": "footwear"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["mode"] == "voice" and "running shoes" in body["transcript"].lower()
    assert len(body["results"]) == 5 and body["timings"]["transcribe_ms"] > 0
    assert body["interpreted"]["filters"] == {"price": {"lte": 50}}, "the transcript is read like typed text"
    assert body["interpreted"]["text"].lower().startswith("blue running shoes")


def test_voice_transcript_feeds_the_text_pipeline(shop, tmp_path):
    client, _, creds = shop
    wav = spoken_wav("red leather handbag for the evening", tmp_path)
    voice = search(client, creds, "voice", files={"audio": ("a.wav", wav.read_bytes())},
                   data={"filters": '{"category": "shoes"}', "limit": "12"})
    transcript = voice.json()["transcript"]
    assert "red leather" in transcript.lower()
    text = search(client, creds, "text", json={"query": transcript, "filters": {"category": "shoes"}, "limit": 12})
    assert ranked(voice) == ranked(text)


def test_voice_errors_have_their_own_codes(shop, tmp_path):
    client, _, creds = shop
    cases = {
        "no_speech": silence_wav(2, tmp_path),
        "unsupported_media_type": b"RIFF....WAVEfmt not really audio at all",
        "audio_too_long": silence_wav(31, tmp_path),
    }
    for code, audio in cases.items():
        response = search(client, creds, "voice", files={"audio": ("a.wav", audio)})
        assert response.status_code == 422 and response.json()["error"]["code"] == code, (code, response.text)
    png = search(client, creds, "voice", files={"audio": ("a.mp3", HALVES)})
    assert png.json()["error"]["code"] == "unsupported_media_type"
    missing = search(client, creds, "voice", data={"limit": "3"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "audio_required"


def test_uploads_over_the_cap_are_413(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_upload_bytes=2000, max_audio_bytes=3000))) as client:
        creds = new_tenant(client)
        for mode, files in (("crop", {"file": ("q", b"x" * 2001)}), ("voice", {"audio": ("a", b"x" * 3001)})):
            response = client.post(f"/v1/search/{mode}", files=files, data={"bbox": "[0,0,9,9]"},
                                   headers=auth(creds.publishable_key))
            assert response.status_code == 413 and response.json()["error"]["code"] == "upload_too_large"


def test_no_query_image_url_audio_or_transcript_reaches_the_logs_nor_an_image_the_search_log(shop, tmp_path, caplog):
    client, server, creds = shop
    secret_path = "/private-query-7f3a9c.png"
    server.add_image(secret_path, solid_png(60, 60, (1, 200, 3)))
    secret_url = server.url(secret_path)
    spoken = spoken_wav("blue running shoes under fifty dollars", tmp_path).read_bytes()
    caplog.set_level(logging.DEBUG)
    responses = [
        search(client, creds, "text", json={"query": "plain text query"}),
        search(client, creds, "url", json={"image_url": secret_url}),
        search(client, creds, "image", files={"file": ("q", HALVES)}),
        search(client, creds, "crop", json={"image_url": secret_url, "bbox": [0, 0, 30, 30]}),
        search(client, creds, "multi", json={"image_urls": [secret_url, secret_url]}),
        search(client, creds, "fusion", json={"image_url": secret_url, "text": "green"}),
        search(client, creds, "voice", files={"audio": ("a.wav", spoken)}),
    ]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    transcript = responses[-1].json()["transcript"]
    container = client.app.state.container
    container.search.log_writer.flush()

    columns = {c["name"] for c in inspect(container.db.engine).get_columns("search_logs")}
    assert columns == {"id", "tenant_id", "mode", "profile", "product_ids", "took_ms", "created_at", "query"}
    ids = [r.json()["search_id"] for r in responses]
    with container.db.session() as session:
        rows = {row.id: row for row in session.scalars(select(SearchLog).where(SearchLog.id.in_(ids)))}
    assert [rows[i].mode for i in ids] == ["text", "url", "image", "crop", "multi", "fusion", "voice"]
    for search_id, response in zip(ids, responses, strict=True):
        assert rows[search_id].product_ids == [r["id"] for r in response.json()["results"]]
    # Text, the fusion's words and the transcript are kept normalised for analytics; no image mode keeps anything.
    assert [rows[i].query for i in ids] == ["plain text query", None, None, None, None, "green",
                                            " ".join(transcript.lower().split())]
    stored = " ".join(f"{r.id} {r.mode} {r.profile} {r.product_ids}" for r in rows.values())
    logged = " ".join(record.getMessage() for record in caplog.records)
    for secret in (secret_url, secret_path, transcript):
        assert secret not in stored and secret not in logged
