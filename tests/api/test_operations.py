"""/readyz fails for each unreachable dependency; /metrics exposes what operators watch; logs are JSON
lines that carry the request id returned in the response header."""

import json
import logging

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.conftest import auth, make_settings, new_tenant
from tests.support.services import free_port
from trooply.api.app import create_app
from trooply.observability import JsonFormatter


def test_readyz_fails_when_sql_is_unreachable(client):
    container = client.app.state.container
    container.db.engine = create_engine(f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none",
                                        connect_args={"connect_timeout": 2})
    body = client.get("/readyz")
    assert body.status_code == 503
    assert body.json()["checks"]["sql"].startswith("unavailable") and body.json()["checks"]["queue"] == "ok"


def test_readyz_fails_when_the_index_is_closed(client):
    client.app.state.container.index.close()
    body = client.get("/readyz")
    assert body.status_code == 503 and body.json()["checks"]["index"].startswith("unavailable")


def test_readyz_fails_when_the_queue_broker_is_unreachable(tmp_path):
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        body = client.get("/readyz")
    assert body.status_code == 503 and body.json()["checks"]["queue"].startswith("unavailable")
    assert body.json()["checks"]["sql"] == "ok"


def test_metrics_expose_request_search_index_encoder_and_queue_figures(client):
    creds = new_tenant(client)
    client.post("/v1/search/text", json={"query": "red shoe"}, headers=auth(creds.publishable_key))
    text = client.get("/metrics").text
    assert 'trooply_request_seconds_count{method="POST",route="/v1/search/text",status="200"}' in text
    assert 'trooply_search_seconds_count{mode="text"}' in text
    assert "trooply_index_query_seconds_count" in text
    assert 'trooply_encoder_batch_seconds_count{kind="text"}' in text
    assert "trooply_queue_depth 0.0" in text


def test_access_log_lines_are_json_with_the_request_id_of_the_response(client, caplog):
    caplog.set_level(logging.INFO, logger="trooply.access")
    response = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    record = next(r for r in caplog.records if r.name == "trooply.access" and getattr(r, "path", "") == "/healthz")
    line = json.loads(JsonFormatter().format(record))
    assert response.headers["X-Request-ID"] == "req-42"
    assert line["request_id"] == "req-42" and line["status"] == 200 and line["path"] == "/healthz"
    assert line["level"] == "INFO" and "duration_ms" in line
