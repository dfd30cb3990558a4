"""Kill the embedded service mid-ingest (SIGKILL), start it again: every accepted product reaches a final state."""

import time

import httpx

from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.services import (
    create_tenant_cli,
    free_port,
    kill_hard,
    start_trooply,
    stop,
    trooply_env,
    wait_for_port,
)

TOTAL = 24


def statuses(base: str, key: str) -> dict[str, str]:
    found, after = {}, None
    while True:
        params = {"limit": 1000, **({"after": after} if after else {})}
        page = httpx.get(f"{base}/v1/products", params=params, headers={"Authorization": f"Bearer {key}"}).json()
        found.update({p["id"]: p["status"] for p in page["products"]})
        if not page["next_after"]:
            return found
        after = page["next_after"]


def test_products_accepted_before_a_crash_all_finish_after_restart(tmp_path):
    port = free_port()
    env = trooply_env(tmp_path, TROOPLY_PORT=str(port), TROOPLY_INGEST_WORKERS="1")
    tenant = create_tenant_cli(env)
    assert tenant["secret_key"].startswith("sk_") and tenant["publishable_key"].startswith("pk_")
    base, key = f"http://127.0.0.1:{port}", tenant["secret_key"]

    with ImageServer() as images:
        for i in range(TOTAL):
            images.add_slow(f"/{i}.png", 0.4, two_halves_png(64, 64, (i * 10, 0, 0), (0, 0, 255 - i * 10)))
        products = [{"id": f"p{i}", "image_url": images.url(f"/{i}.png")} for i in range(TOTAL)]

        first = start_trooply(["serve"], env, tmp_path / "serve-1.log")
        try:
            wait_for_port(port, 90, first)
            accepted = httpx.post(f"{base}/v1/products", json={"products": products},
                                  headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert accepted.status_code == 202 and accepted.json()["accepted"] == TOTAL
            deadline = time.monotonic() + 60
            while "indexed" not in statuses(base, key).values():
                assert time.monotonic() < deadline, "nothing was indexed before the crash"
                time.sleep(0.1)
        finally:
            kill_hard(first)
        before = statuses_from_db(tmp_path, tenant["tenant_id"])
        assert "pending" in before.values(), "the crash must interrupt the ingest for this test to mean anything"

        second = start_trooply(["serve"], env, tmp_path / "serve-2.log")
        try:
            wait_for_port(port, 90, second)
            deadline = time.monotonic() + 90
            while "pending" in (now := statuses(base, key)).values():
                assert time.monotonic() < deadline, f"still pending after restart: {now}"
                time.sleep(0.2)
            assert now == {f"p{i}": "indexed" for i in range(TOTAL)}
            hits = httpx.post(f"{base}/v1/search/text", json={"query": "red", "limit": 100},
                              headers={"Authorization": f"Bearer {tenant['publishable_key']}"}).json()
            assert len(hits["results"]) + len(hits["gated"]) == TOTAL
        finally:
            stop(second)


def statuses_from_db(data_dir, tenant_id: str) -> dict[str, str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data_dir / 'trooply.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status FROM products WHERE tenant_id = :t"), {"t": tenant_id})
        result = dict(rows.all())
    engine.dispose()
    return result


def test_a_second_serve_on_the_same_data_directory_refuses_to_start(tmp_path):
    first_port, second_port = free_port(), free_port()
    first = start_trooply(["serve"], trooply_env(tmp_path, TROOPLY_PORT=str(first_port)), tmp_path / "a.log")
    try:
        wait_for_port(first_port, 90, first)
        second = start_trooply(["serve"], trooply_env(tmp_path, TROOPLY_PORT=str(second_port)), tmp_path / "b.log")
        assert second.wait(90) != 0
        assert "another Trooply process owns the data directory" in (tmp_path / "b.log").read_text()
        assert httpx.get(f"http://127.0.0.1:{first_port}/readyz").json()["status"] == "ready"
    finally:
        stop(first)
