"""An import's memory is bounded by its file, whatever the file holds: the README's bound (some two to five times
the file, plus a batch) measured through the route on the app's own process."""

import tracemalloc

from tests.conftest import auth, new_tenant

MiB = 1024 * 1024


def test_an_import_whose_line_holds_a_huge_array_costs_a_few_times_its_file(client):
    key = new_tenant(client).secret_key
    huge_line = b"[" + b"1," * (2 * MiB) + b"1]"  # 4 MB: parsed, it would be a list of two million numbers
    data = b'{"id": "a", "image_url": "http://127.0.0.1:9/a.png"}\n' + huge_line + b"\n"
    tracemalloc.start()
    try:
        response = client.post("/v1/imports", files={"file": ("big.jsonl", data, "application/x-ndjson")},
                               headers=auth(key))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 202
    assert [row["code"] for row in response.json()["rejected"]] == ["line_too_long"]
    assert peak < 5 * len(data) + 16 * MiB, f"{peak / MiB:.0f} MiB for a {len(data) / MiB:.0f} MiB file"
