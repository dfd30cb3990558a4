"""The colour refresh through the admin API, on the embedded app: a catalogue stored by the old histogram
searches meanwhile (neutral colour), is recomputed in the background, and then names its colours."""

import time

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = auth(TOKEN)
COLOURS = {"blue": (0, 0, 255), "red": (200, 30, 35), "navy": (20, 30, 80)}


def test_an_old_catalogue_is_recomputed_in_the_background_and_searches_answer_throughout(tmp_path):
    settings = make_settings(tmp_path, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client, ImageServer() as images:
        tenant = client.post("/admin/v1/tenants", json={"name": "shop", "plan": "pro"}, headers=ADMIN).json()
        key = tenant["secret_key"]
        for name, rgb in COLOURS.items():
            images.add_image(f"/{name}.png", solid_png(60, 60, rgb))
        batch = {"products": [{"id": name, "image_url": images.url(f"/{name}.png")} for name in COLOURS]}
        job = client.post("/v1/products", json=batch, headers=auth(key)).json()["job_id"]
        assert wait_for_job(client, key, job)["counts"]["indexed"] == 3
        # As the old code stored them: a histogram, no palette.
        index = client.app.state.container.index
        for name in COLOURS:
            image = index.retrieve(tenant["tenant_id"], [name])[0].payload["image"]
            old = {k: v for k, v in image.items() if k != "colour_palette"} | {"colour_hist": [1.0] + [0.0] * 63}
            index.set_payload(tenant["tenant_id"], name, {"image": old})

        stale = client.get("/v1/products/blue/signals", headers=auth(key)).json()["image"]
        assert stale["colour_stale"] and stale["colour_swatch"] == [] and len(stale["colour_histogram"]) == 64
        found = client.post("/v1/search/text", json={"query": "blue", "explain": True},
                            headers=auth(tenant["publishable_key"])).json()
        assert {r["id"] for r in found["results"]} == set(COLOURS)
        assert all(r["_match_breakdown"]["signals"]["colour"] == 0.5 for r in found["results"])

        started = client.post("/admin/v1/colour-refresh", json={}, headers=ADMIN)
        assert started.status_code == 202 and started.json()["started"] == [tenant["tenant_id"]]
        deadline = time.monotonic() + 30
        while (status := client.get("/admin/v1/colour-refresh", headers=ADMIN).json())["tenants"][0]["status"] \
                != "done":
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert (status["done"], status["failed"], status["total"]) == (3, 0, 3)

        for name in COLOURS:
            signals = client.get(f"/v1/products/{name}/signals", headers=auth(key)).json()["image"]
            assert not signals["colour_stale"] and signals["colour_swatch"][0]["name"] == name
        found = client.post("/v1/search/text", json={"query": "blue", "explain": True},
                            headers=auth(tenant["publishable_key"])).json()
        colour = {r["id"]: r["_match_breakdown"]["signals"]["colour"] for r in found["results"]}
        assert colour["blue"] > 0.8 and colour["navy"] > 0.8 and colour["red"] < 0.1  # navy is a blue
        assert client.post("/admin/v1/colour-refresh", json={"restart": "maybe"}, headers=ADMIN).status_code == 422
