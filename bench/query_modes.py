"""p50/p95 per query mode on a 10k catalogue through the real HTTP server, with the time spent in the
CLIP encoder and in Whisper shown apart from our own overhead (everything else, HTTP included).

    .venv/bin/python bench/query_modes.py --products 10000 --model ViT-B-32 --queries 30

Needs espeak-ng for the voice query. Weights are random: timing does not depend on them.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np

from bench._common import bench_settings
from bench.search_latency import populate, serve
from tests.support.image_server import ImageServer
from tests.support.images import solid_png, two_halves_png
from trooply.api.app import create_app


def speech() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "q.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(out),
                        "blue running shoes under fifty dollars"], check=True)
        return out.read_bytes()


def requests_per_mode(server: ImageServer, audio: bytes):
    photo = two_halves_png(640, 480, (200, 30, 30), (30, 30, 200))
    url = server.url("/q.png")
    return {
        "text": lambda i: {"json": {"query": f"query {i} red running shoes", "limit": 30}},
        "url": lambda i: {"json": {"image_url": url, "limit": 30}},
        "image": lambda i: {"files": {"file": ("q.png", photo)}, "data": {"limit": "30"}},
        "crop": lambda i: {"files": {"file": ("q.png", photo)}, "data": {"bbox": "[0, 0, 320, 480]", "limit": "30"}},
        "multi": lambda i: {"json": {"image_urls": [url, server.url("/r.png")], "limit": 30}},
        "fusion": lambda i: {"json": {"image_url": url, "text": f"in red {i}", "limit": 30}},
        "voice": lambda i: {"files": {"audio": ("q.wav", audio)}, "data": {"limit": "30"}},
    }, {"/q.png": photo, "/r.png": solid_png(500, 500, (20, 180, 40))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--port", type=int, default=18865)
    args = parser.parse_args()

    app = create_app(bench_settings(args.model))
    uvicorn_server = serve(app, args.port)
    container = app.state.container
    creds = container.tenants.create_tenant("bench", "pro")
    populate(container, creds.tenant_id, args.products)
    audio = speech()
    print(f"{args.products:,} products, {args.model}, {args.queries} queries per mode (after 3 warm-up)")
    print(f"{'mode':8} {'p50 ms':>8} {'p95 ms':>8} {'CLIP p50':>9} {'Whisper p50':>12} {'ours p50':>9} {'ours p95':>9}")
    with ImageServer() as images, httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60,
                                               headers={"Authorization": f"Bearer {creds.publishable_key}"}) as client:
        modes, files = requests_per_mode(images, audio)
        for path, data in files.items():
            images.add_image(path, data)
        for mode, build in modes.items():
            total, model, whisper = [], [], []
            for i in range(args.queries + 3):
                started = time.perf_counter()
                response = client.post(f"/v1/search/{mode}", **build(i))
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.text
                if i >= 3:
                    timings = json.loads(response.content)["timings"]
                    total.append(elapsed)
                    model.append(timings["model_ms"])
                    whisper.append(timings["transcribe_ms"])
            ours = np.array(total) - np.array(model) - np.array(whisper)
            print(f"{mode:8} {np.percentile(total, 50):8.1f} {np.percentile(total, 95):8.1f} "
                  f"{np.percentile(model, 50):9.1f} {np.percentile(whisper, 50):12.1f} "
                  f"{np.percentile(ours, 50):9.1f} {np.percentile(ours, 95):9.1f}")
    uvicorn_server.should_exit = True
    time.sleep(0.5)


if __name__ == "__main__":
    main()
