"""Server memory under a burst of large uploads: start `trooply serve` on 127.0.0.1, send concurrent uploads of
one generated 36-megapixel photo (JPEG ~0.58 MB, or PNG ~0.94 MB: decoded whole) to /v1/search/image, and print
the server's RSS before the burst, at its peak (VmHWM) and a few seconds after it.

    .venv/bin/python bench/upload_memory.py --uploads 50
    .venv/bin/python bench/upload_memory.py --uploads 50 --format png

--rss-cap-gb stops the server if its RSS passes the cap, so a run on a shared machine cannot exhaust it.
"""

import argparse
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
from PIL import Image

from tests.support.services import create_tenant_cli, free_port, start_trooply, stop, trooply_env, wait_for_port


def gradient_photo(width: int, height: int, fmt: str = "JPEG", quality: int = 30) -> bytes:
    """Smooth gradients: every pixel must be decoded, yet the file compresses to under a megabyte."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    red, green = np.broadcast_to(x, (height, width)), np.broadcast_to(y[:, None], (height, width))
    pixels = np.stack([red, green, (red + green) / 2], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, quality=quality)
    return out.getvalue()


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def gib(kib: int) -> str:
    return f"{kib / 1024 / 1024:.2f} GiB"


class RssWatch(threading.Thread):
    """Samples the server's RSS; past the cap it stops the server rather than the machine."""

    def __init__(self, process: subprocess.Popen, cap_kib: int) -> None:
        super().__init__(daemon=True)
        self.process, self.cap_kib, self.peak_kib, self.capped = process, cap_kib, 0, False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and self.process.poll() is None:
            rss = status_kib(self.process.pid, "VmRSS")
            self.peak_kib = max(self.peak_kib, rss)
            if rss > self.cap_kib:
                self.capped = True
                stop(self.process)
                return
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--width", type=int, default=7360)
    parser.add_argument("--height", type=int, default=4912)
    parser.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--quality", type=int, default=30, help="JPEG quality")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the burst before the last reading")
    parser.add_argument("--rss-cap-gb", type=float, default=12.0)
    args = parser.parse_args()

    photo = gradient_photo(args.width, args.height, args.format.upper(), args.quality)
    print(f"upload: {args.width}x{args.height} {args.format.upper()}, {len(photo) / 1e6:.2f} MB, "
          f"x{args.uploads} concurrent")
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="trooply-bench-"))
    env = trooply_env(data_dir, TROOPLY_PORT=str(port), TROOPLY_LOG_LEVEL="WARNING")
    server = start_trooply(["serve"], env, data_dir / "server.log")
    try:
        wait_for_port(port, 120, server)
        key = create_tenant_cli(env)["publishable_key"]
        url = f"http://127.0.0.1:{port}/v1/search/image"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=600) as client:
            warm = client.post(url, headers=headers, files={"file": ("warm.jpg", gradient_photo(640, 480))})
            assert warm.status_code == 200, warm.text
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM from here on
        before = status_kib(server.pid, "VmRSS")
        watch = RssWatch(server, int(args.rss_cap_gb * 1024 * 1024))
        watch.start()

        def upload(_: int) -> int:
            with httpx.Client(timeout=600) as client:
                return client.post(url, headers=headers, files={"file": (f"big.{args.format}", photo)}).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(args.uploads) as pool:
            try:
                statuses = list(pool.map(upload, range(args.uploads)))
            except httpx.HTTPError as error:
                statuses = [f"{type(error).__name__}"]
        took = time.perf_counter() - started
        if watch.capped:
            print(f"server stopped: RSS passed the {args.rss_cap_gb} GB cap (peak sampled {gib(watch.peak_kib)})")
            return
        peak = status_kib(server.pid, "VmHWM")
        time.sleep(args.settle)
        after = status_kib(server.pid, "VmRSS")
        watch.done.set()
        counts = {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)}
        print(json.dumps({"statuses": counts, "burst_s": round(took, 1)}))
        print(f"RSS before {gib(before)}, peak {gib(max(peak, watch.peak_kib))}, after {args.settle:g}s {gib(after)}")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
