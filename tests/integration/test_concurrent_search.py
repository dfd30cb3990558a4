"""A real `trooply serve` under concurrent shoppers: their queries share forward passes (seen in /metrics),
and none fails."""

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.images import two_halves_png
from tests.support.services import create_tenant_cli, serving, trooply_env

CLIENTS, SEARCHES_EACH = 8, 6


def runtime_passes(metrics: str, kind: str) -> tuple[float, float]:
    """(forward passes, items) of the runtime's image or text batcher."""
    def sample(name: str) -> float:
        found = re.search(rf'^trooply_runtime_batch_size_{name}{{kind="{kind}",model="[^"]+"}} (\S+)$', metrics, re.M)
        return float(found.group(1)) if found else 0.0
    return sample("count"), sample("sum")


def test_concurrent_searches_share_forward_passes_and_all_succeed(tmp_path):
    # A wait long enough that concurrent arrivals on a busy 2-core machine reliably meet in one pass.
    env = trooply_env(tmp_path, TROOPLY_RUNTIME_MAX_WAIT_MS="40", TROOPLY_RATE_LIMIT_PER_TENANT="0")
    tenant = create_tenant_cli(env)
    with serving(env, tmp_path / "serve.log") as base:
        pk = {"Authorization": f"Bearer {tenant['publishable_key']}"}
        before = httpx.get(f"{base}/metrics").text
        uploads = [two_halves_png(64, 64, (i * 30 % 256, 40, 200), (10, i * 50 % 256, 90)) for i in range(CLIENTS)]

        def shopper(index: int) -> list[int]:
            with httpx.Client(base_url=base, headers=pk, timeout=60) as http:
                statuses = []
                for turn in range(SEARCHES_EACH):
                    if turn % 2:
                        response = http.post("/v1/search/text", json={"query": f"red bag {index} {turn}"})
                    else:
                        response = http.post("/v1/search/image", files={"file": ("q.png", uploads[index])})
                    statuses.append(response.status_code)
                return statuses

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [s for shopper_statuses in pool.map(shopper, range(CLIENTS)) for s in shopper_statuses]
        assert statuses == [200] * CLIENTS * SEARCHES_EACH

        after = httpx.get(f"{base}/metrics").text
        for kind in ("image", "text"):
            passes = runtime_passes(after, kind)[0] - runtime_passes(before, kind)[0]
            items = runtime_passes(after, kind)[1] - runtime_passes(before, kind)[1]
            assert items == CLIENTS * SEARCHES_EACH / 2, kind
            assert passes < items, f"{kind}: {items} items in {passes} passes: nothing was batched"
