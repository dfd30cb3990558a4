"""/readyz names the CLIP runtime that serves, its precision and its probe figure, or why it fell back."""

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app


def test_readyz_names_the_onnx_runtime_its_precision_and_probe_figure(tmp_path):
    settings = make_settings(tmp_path, clip_runtime="onnx-int8")
    with TestClient(create_app(settings)) as client:
        body = client.get("/readyz").json()
        runtime = body["models"]["clip"]["runtime"]
        assert body["status"] == "ready" and body["models"]["clip"]["precision"] == "int8"
        assert runtime["requested"] == "onnx-int8" and runtime["runtime"] == "onnx" and runtime["precision"] == "int8"
        assert runtime["probe_floor"] == 0.99 and 0.99 <= runtime["probe_min_cosine"] <= 1.0
        assert runtime["folder"].startswith(str(tmp_path / "onnx"))  # under the data dir
        # Search runs on it end to end.
        key = new_tenant(client, plan="pro").publishable_key
        response = client.post("/v1/search/text", json={"query": "red shoes"}, headers=auth(key))
        assert response.status_code == 200


def test_auto_serves_onnx_on_the_cpu(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, clip_runtime="auto"))) as client:
        runtime = client.get("/readyz").json()["models"]["clip"]["runtime"]
    assert (runtime["requested"], runtime["runtime"], runtime["precision"]) == ("auto", "onnx", "fp32")
    assert runtime["probe_min_cosine"] >= 0.999


def test_readyz_stays_ready_and_says_why_when_the_runtime_fell_back(tmp_path):
    blocked = tmp_path / "exports"
    blocked.write_text("not a folder")
    settings = make_settings(tmp_path / "data", clip_runtime="onnx", clip_export_dir=blocked)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    runtime = response.json()["models"]["clip"]["runtime"]
    assert response.status_code == 200 and runtime["runtime"] == "torch"
    assert runtime["fallback"].startswith("onnx: export to")
