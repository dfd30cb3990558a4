"""The model runtime's bounded queue seen through HTTP: a query beyond it is shed with a 503."""

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.images import solid_png
from trooply.api.app import create_app


def test_a_query_over_the_runtime_queue_is_a_503_with_retry_after(tmp_path):
    settings = make_settings(tmp_path, runtime_max_queue=1)
    with TestClient(create_app(settings)) as client:
        keys = new_tenant(client)
        files = [("files", (f"{i}.png", solid_png(40, 40, (i * 90, 0, 0)), "image/png")) for i in range(2)]
        response = client.post("/v1/search/multi", files=files, headers=auth(keys.publishable_key))
        assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
        assert int(response.headers["retry-after"]) >= 1
        metrics = client.get("/metrics").text
        assert 'trooply_runtime_shed_total{model="trooply-test-tiny"}' in metrics
