"""Throughput and latency of the real `trooply serve` under concurrent search load, next to the raw encoder.

    .venv/bin/python bench/load.py --model ViT-B-32 --products 2000 --concurrency 1 4 8 16 32 64 --seconds 15
    .venv/bin/python bench/load.py --env TROOPLY_SOME_BATCH_SETTING=8 --json /tmp/load.json   # compare settings
    .venv/bin/python bench/load.py --runtime torch onnx onnx-int8 --products 300 --modes image --concurrency 1 8

`--runtime` (TROOPLY_CLIP_RUNTIME, default auto) runs steps 2-4 once per runtime, each on a server and data dir
of its own, one after the other, and ends with a table of each runtime's ingest rate and each level's req/s and
p50 next to the first runtime's. The ONNX exports are kept under --export-dir, so no server exports twice.

1. Raw parts first, in this process, before the server starts (so nothing competes): open_clip's image
   encoder at batch 8 and 1 (preprocessing of a ~300 px PIL image included) and its text encoder at
   batch 8 and 1, random weights, torch.inference_mode(), after warm-up passes.
2. `trooply serve` starts as a subprocess on 127.0.0.1 and a free port with a throwaway data dir,
   random weights, rate limits off, plus every --env KEY=VALUE. This process is only the load
   generator (and the image server), so the server never shares its GIL with the clients.
3. A pro tenant (`trooply tenants create --plan pro --json`) gets --products generated JPEGs, served by
   an image server on 127.0.0.1 in this process, POSTed in batches of 1,000; we wait for the jobs.
4. For each mode and concurrency level, C threads (one httpx.Client each) search back to back for
   --seconds: text = POST /v1/search/text with phrases from a large generated vocabulary (so nearly
   every query misses the service's text-embedding cache), url = POST /v1/search/url naming one of the
   served images, image = multipart upload of a pre-encoded ~300 px JPEG. After a 429 or a 503 a client
   pauses --retry-pause seconds (not counted) instead of spinning.

Latency percentiles are over successful (200) answers; req/s counts successful answers over the level's
wall time. `shed` = 503 with error code `overloaded`. `/raw8` = req/s divided by the raw batch-8
throughput of the same encoder (image encoder for url/image, text encoder for text). `batch` = mean
batch size from the server's `trooply_runtime_batch_size` histogram during the level, when it exports
one. `cli cpu` is this process's CPU (load generator + image server) in % of one core: near 100% the
client, not the server, may be the bottleneck. `srv cpu` is the server process's CPU in % of one core.
Prints figures, asserts nothing. Weights are random: timing does not depend on them.
"""

import argparse
import contextlib
import gc
import io
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx
import numpy as np
from PIL import Image, ImageDraw

from tests.support.image_server import ImageServer
from tests.support.services import free_port, stop, trooply_env

MODES = ("text", "url", "image")
INGEST_BATCH = 1000
CATEGORIES = ("shoes", "bags", "shirts", "watches", "lamps", "dresses", "jackets", "hats")
TARGET_CONCURRENCY = (8, 32)

COLOURS = ("red", "navy", "black", "white", "beige", "olive", "burgundy", "teal", "mustard", "grey", "pink",
           "lilac", "cream", "khaki", "coral", "emerald", "charcoal", "tan", "ivory", "cobalt", "rust", "mint",
           "plum", "sand", "silver", "gold", "orange", "turquoise", "maroon", "denim")
ADJECTIVES = ("vintage", "slim", "oversized", "cropped", "quilted", "waterproof", "lightweight", "chunky",
              "minimal", "striped", "floral", "checked", "ribbed", "pleated", "embroidered", "distressed",
              "tailored", "relaxed", "classic", "sporty", "elegant", "casual", "retro", "padded", "woven",
              "knitted", "glossy", "matte", "suede-look", "recycled")
MATERIALS = ("leather", "cotton", "linen", "wool", "denim", "silk", "canvas", "nylon", "cashmere", "velvet",
             "corduroy", "satin", "jersey", "mesh", "rubber", "ceramic", "brass", "bamboo", "felt", "tweed")
ITEMS = ("sneakers", "boots", "loafers", "sandals", "tote bag", "backpack", "crossbody bag", "wallet", "shirt",
         "blouse", "t-shirt", "hoodie", "jacket", "coat", "blazer", "dress", "skirt", "jeans", "trousers",
         "shorts", "scarf", "beanie", "cap", "watch", "bracelet", "necklace", "sunglasses", "belt", "lamp",
         "vase", "cushion", "rug", "mug", "teapot", "chair", "side table", "mirror", "candle", "basket", "clock")
PHRASE_NUMBERS = 10_000
VOCABULARY = len(COLOURS) * len(ADJECTIVES) * len(MATERIALS) * len(ITEMS) * PHRASE_NUMBERS


def phrase(rng: random.Random) -> str:
    return (f"{rng.choice(ADJECTIVES)} {rng.choice(COLOURS)} {rng.choice(MATERIALS)} {rng.choice(ITEMS)} "
            f"{rng.randrange(PHRASE_NUMBERS)}")


# ---------------------------------------------------------------------------------------------- images

def photo(seed: int, side: int | None = None) -> Image.Image:
    """A product-ish picture: a coloured background and a few shapes, 224-400 px a side unless given."""
    rng = random.Random(seed)
    w = side or rng.randint(224, 400)
    h = side or rng.randint(224, 400)
    image = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        x0, y0 = rng.randrange(w // 2), rng.randrange(h // 2)
        box = (x0, y0, x0 + rng.randint(w // 8, w // 2), y0 + rng.randint(h // 8, h // 2))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


# -------------------------------------------------------------------------------------- raw encoder

def _rate(fn, batch: int, seconds: float, warmup: int = 3, min_iters: int = 5) -> tuple[float, float]:
    """(items/s, ms per call) of fn() processing `batch` items per call, both from the median call: robust to
    stalls caused by other processes on a shared machine (the mean is not)."""
    for _ in range(warmup):
        fn()
    times = []
    started = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return batch / median, 1000 * median


def measure_raw(model_name: str, seconds: float, torch_threads: int | None) -> dict:
    import open_clip
    import torch

    open_clip.add_model_config(REPO / "trooply" / "vision" / "model_configs")
    if torch_threads:
        torch.set_num_threads(torch_threads)
    # Mirrors the service's defaults: CUDA in fp16 when there is a GPU, else CPU in fp32.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = "fp16" if device.type == "cuda" else "fp32"
    dtype = torch.float16 if precision == "fp16" else torch.float32
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's "no pretrained weights" warning: we know
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None, precision=precision,
                                                                 device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    images = [photo(10_000 + i, side=300) for i in range(8)]
    rng = random.Random(1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def encode_images(batch: int):
        def run():
            pixels = torch.stack([preprocess(image) for image in images[:batch]])
            with torch.inference_mode():
                model.encode_image(pixels.to(device, dtype))
            sync()
        return run

    def encode_texts(batch: int):
        def run():
            tokens = tokenizer([phrase(rng) for _ in range(batch)])
            with torch.inference_mode():
                model.encode_text(tokens.to(device))
            sync()
        return run

    image8, image8_ms = _rate(encode_images(8), 8, seconds)
    image1, image1_ms = _rate(encode_images(1), 1, seconds)
    text8, text8_ms = _rate(encode_texts(8), 8, seconds)
    text1, text1_ms = _rate(encode_texts(1), 1, seconds)
    result = {"device": str(device), "precision": precision, "torch_threads": torch.get_num_threads(),
              "image_per_s_batch8": image8, "image_per_s_batch1": image1, "image_batch8_ms": image8_ms,
              "image_batch1_ms": image1_ms, "text_per_s_batch8": text8, "text_per_s_batch1": text1,
              "text_batch8_ms": text8_ms, "text_batch1_ms": text1_ms}
    return result  # the model is freed with this frame, before the server starts


# ------------------------------------------------------------------------------------------- server

def server_env(data_dir: Path, model: str, extra: dict[str, str]) -> dict[str, str]:
    # The tests' environment (random weights, the address rule on with 127.0.0.1 exempt), at full model size.
    return trooply_env(data_dir, TROOPLY_CLIP_MODEL=model, TROOPLY_RATE_LIMIT_PER_IP="0",
                       TROOPLY_RATE_LIMIT_PER_TENANT="0", TROOPLY_LOG_LEVEL="WARNING", TROOPLY_ENCODE_BATCH_SIZE="16",
                       **extra)


class Server:
    """`python -m trooply.cli serve` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trooply.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=5)
                if response.status_code == 200:
                    return
                last = response.text[:500]
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.25)
        raise RuntimeError(f"server not ready within {timeout:.0f}s (last: {last})\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "--- server log (tail) ---\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            stop(self.process)


def create_tenant(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "trooply.cli", "tenants", "create", "bench-load", "--plan", "pro",
                          "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"`trooply tenants create` failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def ingest(base_url: str, secret_key: str, urls: list[str], timeout: float, first: int = 0) -> dict:
    """POSTs products p{first}... naming these URLs and waits for their jobs."""
    started = time.perf_counter()
    jobs = []
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {secret_key}"}, timeout=120) as client:
        for start in range(0, len(urls), INGEST_BATCH):
            products = [{"id": f"p{first + i}", "image_url": urls[i], "title": f"Product {first + i}",
                         "category": CATEGORIES[i % len(CATEGORIES)], "price": float(5 + i % 300),
                         "in_stock": i % 4 != 0} for i in range(start, min(start + INGEST_BATCH, len(urls)))]
            response = client.post("/v1/products", json={"products": products})
            if response.status_code != 202:
                raise RuntimeError(f"POST /v1/products answered {response.status_code}: {response.text[:500]}")
            jobs.append(response.json()["job_id"])
        deadline = time.monotonic() + timeout
        counts: Counter[str] = Counter()
        errors = []
        for job_id in jobs:
            while True:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job.get("status") != "running" and job.get("status") != "pending":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingest not done within {timeout:.0f}s: {job}")
                time.sleep(0.2)
            counts.update(job.get("counts", {}))
            errors.extend(job.get("errors", [])[:3])
    return {"seconds": time.perf_counter() - started, "counts": dict(counts), "errors": errors[:5]}


# ------------------------------------------------------------------------------------------ metrics

def scrape(client: httpx.Client) -> dict:
    """Cumulative trooply_runtime_batch_size sum/count per kind and trooply_runtime_shed_total; {} if absent."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = client.get("/metrics")
        if response.status_code != 200:
            return {}
        families = list(text_string_to_metric_families(response.text))
    except (httpx.HTTPError, ValueError):
        return {}
    batch: dict[str, list[float]] = {}
    shed = None
    for family in families:
        if family.name == "trooply_runtime_batch_size":
            for sample in family.samples:
                kind = sample.labels.get("kind", "all")
                slot = batch.setdefault(kind, [0.0, 0.0])
                if sample.name.endswith("_sum"):
                    slot[0] += sample.value
                elif sample.name.endswith("_count"):
                    slot[1] += sample.value
        elif family.name in ("trooply_runtime_shed", "trooply_runtime_shed_total"):
            shed = (shed or 0.0) + sum(s.value for s in family.samples if s.name.endswith("_total"))
    return {"batch": batch, "shed": shed}


def metric_deltas(before: dict, after: dict) -> tuple[dict[str, float], float | None]:
    means = {}
    for kind, (total, count) in after.get("batch", {}).items():
        total0, count0 = before.get("batch", {}).get(kind, (0.0, 0.0))
        if count - count0 > 0:
            means[kind] = (total - total0) / (count - count0)
    shed = None
    if after.get("shed") is not None:
        shed = after["shed"] - (before.get("shed") or 0.0)
    return means, shed


# --------------------------------------------------------------------------------------------- load

class Level:
    """One mode at one concurrency: C threads, one httpx.Client each, back to back until the deadline."""

    def __init__(self, base_url: str, key: str, mode: str, build, concurrency: int, seconds: float,
                 retry_pause: float) -> None:
        self.base_url, self.key, self.mode, self.build = base_url, key, mode, build
        self.concurrency, self.seconds, self.retry_pause = concurrency, seconds, retry_pause
        self.go = threading.Event()
        self.stop = threading.Event()
        self.ready = threading.Barrier(concurrency + 1)
        self.start = self.deadline = 0.0
        self.results: list[list[tuple[float, float, int | None, str | None]]] = [[] for _ in range(concurrency)]
        self.phrases: list[set[str]] = [set() for _ in range(concurrency)]
        self.wall = self.cpu = 0.0  # summed over the rounds run so far

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"},
                            timeout=httpx.Timeout(120, connect=10))

    def _worker(self, slot: int) -> None:
        rng = random.Random(hash((self.mode, self.concurrency, slot, time.time_ns())))
        out, seen = self.results[slot], self.phrases[slot]
        with self.client() as client:
            self.ready.wait()
            self.go.wait()
            while not self.stop.is_set() and time.perf_counter() < self.deadline:
                kwargs, text = self.build(rng)
                if text is not None:
                    seen.add(text)
                t0 = time.perf_counter()
                try:
                    response = client.post(f"/v1/search/{self.mode}", **kwargs)
                    status, code = response.status_code, None
                    if status != 200:
                        try:
                            code = response.json()["error"]["code"]
                        except (ValueError, KeyError, TypeError):
                            code = None
                except httpx.HTTPError as error:
                    status, code = None, type(error).__name__
                out.append((t0, time.perf_counter(), status, code))
                if status in (429, 503) and self.retry_pause > 0:
                    time.sleep(self.retry_pause)

    def run(self) -> dict:
        """One round of --seconds; a later call adds another round, and the figures cover every round so far."""
        self.go.clear()
        self.stop.clear()
        self.ready.reset()
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(self.concurrency)]
        for thread in threads:
            thread.start()
        self.ready.wait()
        cpu0 = time.process_time()
        self.start = time.perf_counter()
        self.deadline = self.start + self.seconds
        self.go.set()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        finally:
            self.stop.set()
        end = max([r[1] for rows in self.results for r in rows if r[0] >= self.start], default=time.perf_counter())
        self.wall += max(end - self.start, 1e-9)
        self.cpu += time.process_time() - cpu0
        return self.summary()

    def summary(self) -> dict:
        wall, cpu = self.wall, self.cpu
        rows = [r for rows in self.results for r in rows]
        ok = [1000 * (t1 - t0) for t0, t1, status, _ in rows if status == 200]
        statuses = Counter(status for _, _, status, _ in rows)
        shed = sum(1 for _, _, status, code in rows if status == 503 and code == "overloaded")
        limited = Counter(code or "?" for _, _, status, code in rows if status == 429)
        other = Counter(f"{status}:{code}" if code else str(status) for _, _, status, code in rows
                        if status not in (200, 429) and not (status == 503 and code == "overloaded"))
        phrases = set().union(*self.phrases)
        return {"mode": self.mode, "concurrency": self.concurrency, "seconds": wall, "sent": len(rows),
                "completed": len(ok), "req_per_s": len(ok) / wall,
                "p50_ms": float(np.percentile(ok, 50)) if ok else None,
                "p95_ms": float(np.percentile(ok, 95)) if ok else None,
                "p99_ms": float(np.percentile(ok, 99)) if ok else None,
                "shed": shed, "rate_limited": sum(limited.values()), "rate_limited_codes": dict(limited),
                "other_errors": dict(other), "statuses": {str(k): v for k, v in statuses.items()},
                "client_cpu_pct": 100 * cpu / wall, "distinct_phrases": len(phrases) if self.mode == "text" else None}


def builders(urls: list[str], uploads: list[bytes]):
    def text(rng: random.Random):
        query = phrase(rng)
        return {"json": {"query": query}}, query

    def url(rng: random.Random):
        return {"json": {"image_url": rng.choice(urls)}}, None

    def image(rng: random.Random):
        return {"files": {"file": ("query.jpg", rng.choice(uploads), "image/jpeg")}}, None

    return {"text": text, "url": url, "image": image}


def warm_up(base_url: str, key: str, mode: str, build, count: int) -> None:
    rng = random.Random(7)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        for _ in range(count):
            kwargs, _ = build(rng)
            response = client.post(f"/v1/search/{mode}", **kwargs)
            if response.status_code != 200:
                print(f"  warm-up {mode}: HTTP {response.status_code} {response.text[:300]}", flush=True)


# ------------------------------------------------------------------------------------------- output

def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


HEADER = (f"{'mode':6} {'conc':>4} {'done':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'shed':>5} {'429':>5} {'/raw8':>6} {'batch':>10} {'cli cpu':>8} {'srv cpu':>8}  other errors")


def row(level: dict) -> str:
    batch = level.get("batch_mean") or {}
    batch_text = " ".join(f"{k}:{v:.1f}" for k, v in batch.items()) if len(batch) > 1 else \
        (f"{next(iter(batch.values())):.2f}" if batch else "-")
    other = ", ".join(f"{k}x{v}" for k, v in sorted(level["other_errors"].items())) or "-"
    return (f"{level['mode']:6} {level['concurrency']:>4} {level['completed']:>7} {level['req_per_s']:8.1f} "
            f"{fmt(level['p50_ms']):>8} {fmt(level['p95_ms']):>8} {fmt(level['p99_ms']):>8} {level['shed']:>5} "
            f"{level['rate_limited']:>5} {fmt(level.get('ratio_to_raw8'), '.2f'):>6} {batch_text:>10} "
            f"{fmt(level['client_cpu_pct'], '.0f') + '%':>8} "
            f"{fmt(level.get('server_cpu_pct'), '.0f') + '%':>8}  {other}")


def targets(levels: list[dict], raw: dict) -> list[dict]:
    found = []
    for mode in ("image", "url"):
        by_c = {level["concurrency"]: level for level in levels if level["mode"] == mode}
        at8, at32 = by_c.get(8), by_c.get(32)
        entry = {"mode": mode}
        if at8:
            entry["a_req8_over_raw_batched"] = at8["req_per_s"] / raw["image_per_s_batch8"]
            if at8["p95_ms"] is not None:
                entry["c_p95_8_over_raw_batch8_ms"] = at8["p95_ms"] / raw["image_batch8_ms"]
        if at8 and at32 and at8["req_per_s"] > 0:
            entry["b_req32_over_req8"] = at32["req_per_s"] / at8["req_per_s"]
        if mode in {level["mode"] for level in levels}:
            found.append(entry)
    return found


# --------------------------------------------------------------------------------------------- main

def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


RUNTIME_NAMES = ("auto", "torch", "onnx", "onnx-int8")


def parse_runtime(spec: str) -> tuple[str, dict[str, str]]:
    """`onnx-int8` or `onnx-int8:TROOPLY_INGEST_WORKERS=4,TROOPLY_ONNX_THREADS=1`: a runtime and its own env."""
    name, _, pairs = spec.partition(":")
    if name not in RUNTIME_NAMES:
        raise SystemExit(f"--runtime: {name!r} is not one of {', '.join(RUNTIME_NAMES)}")
    return name, parse_env([pair for pair in pairs.split(",") if pair])


def runtime_env(args, spec: str, extra_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    runtime, own = parse_runtime(spec)
    return server_env(data_dir / "data", args.model, extra_env | own | {
        "TROOPLY_CLIP_RUNTIME": runtime, "TROOPLY_CLIP_EXPORT_DIR": str(args.export_dir)})


def start_server(spec: str, env: dict[str, str], data_dir: Path, timeout: float) -> tuple[Server, dict]:
    data_dir.mkdir(parents=True)
    server = Server(env, data_dir / "server.log")
    started = time.perf_counter()
    server.wait_ready(timeout)
    clip = httpx.get(f"{server.base_url}/readyz", timeout=30).json()["models"]["clip"]
    served = clip.get("runtime", {})
    print(f"\n[{spec}] trooply serve ready on {server.base_url} in {time.perf_counter() - started:.1f}s (pid "
          f"{server.process.pid}); serving with {served or clip.get('precision')}", flush=True)
    return server, served


def run_interleaved(args, specs: list[str], extra_env: dict[str, str], data_dir: Path, raw: dict, urls: list[str],
                    uploads: list[bytes]) -> list[dict]:
    """Every runtime's server up at once (started one after the other, so exports never overlap; an idle one
    costs next to nothing), then --rounds rounds of ingest and of each level, the runtimes taking turns in an
    order reversed every round: load from other processes that comes and goes falls on each runtime alike."""
    servers: list[Server] = []
    runs: list[dict] = []
    try:
        for number, spec in enumerate(specs):
            env = runtime_env(args, spec, extra_env, data_dir / f"{number}")
            server, served = start_server(spec, env, data_dir / f"{number}", args.startup_timeout)
            servers.append(server)
            runs.append({"runtime": spec, "clip_runtime": served, "levels": [], "creds": create_tenant(env)})

        def turns(round_number: int) -> list[int]:
            order = list(range(len(specs)))
            return order if round_number % 2 == 0 else order[::-1]

        chunk = -(-len(urls) // args.rounds)
        ingested = [{"seconds": 0.0, "counts": Counter(), "errors": []} for _ in specs]
        for round_number in range(args.rounds):
            first = round_number * chunk
            for i in turns(round_number):
                done = ingest(servers[i].base_url, runs[i]["creds"]["secret_key"], urls[first:first + chunk],
                              args.ingest_timeout, first)
                ingested[i]["seconds"] += done["seconds"]
                ingested[i]["counts"].update(done["counts"])
                ingested[i]["errors"].extend(done["errors"])
        for run, done in zip(runs, ingested, strict=True):
            run["ingest"] = done | {"counts": dict(done["counts"]), "errors": done["errors"][:5]}
            print(f"[{run['runtime']}] ingested {len(urls)} products in {args.rounds} rounds, {done['seconds']:.1f}s "
                  f"({len(urls) / done['seconds']:.1f}/s): {dict(done['counts'])}", flush=True)

        build = builders(urls, uploads)
        clients = [httpx.Client(base_url=server.base_url, timeout=30) for server in servers]
        print(f"\n{args.seconds:g}s per level and runtime in {args.rounds} rounds; latency over 200s only", flush=True)
        print(f"{'runtime':24} " + HEADER, flush=True)
        for mode in args.modes:
            for server, run in zip(servers, runs, strict=True):
                warm_up(server.base_url, run["creds"]["publishable_key"], mode, build[mode], args.warmup)
            for concurrency in args.concurrency:
                levels = [Level(server.base_url, run["creds"]["publishable_key"], mode, build[mode], concurrency,
                                args.seconds / args.rounds, args.retry_pause)
                          for server, run in zip(servers, runs, strict=True)]
                before = [scrape(client) for client in clients]
                cpu = [0.0 for _ in specs]
                for round_number in range(args.rounds):
                    for i in turns(round_number):
                        servers[i].check_alive()
                        srv0 = servers[i].cpu_seconds()
                        levels[i].run()
                        srv1 = servers[i].cpu_seconds()
                        cpu[i] += (srv1 or 0.0) - (srv0 or 0.0)
                for i, (level, run) in enumerate(zip(levels, runs, strict=True)):
                    summary = level.summary()
                    summary["batch_mean"], summary["server_shed_metric"] = metric_deltas(before[i], scrape(clients[i]))
                    summary["server_cpu_pct"] = 100 * cpu[i] / summary["seconds"]
                    raw8 = raw["text_per_s_batch8"] if mode == "text" else raw["image_per_s_batch8"]
                    summary["ratio_to_raw8"] = summary["req_per_s"] / raw8
                    run["levels"].append(summary)
                    print(f"{run['runtime'][:24]:24} " + row(summary), flush=True)
        for client in clients:
            client.close()
        for run in runs:
            run["targets"] = targets(run["levels"], raw)
            del run["creds"]
        return runs
    finally:
        for server in servers:  # each on its own: one that will not die must not leave the others running
            try:
                server.stop()
            except Exception as error:
                print(f"stopping the server on {server.base_url} (pid {server.process.pid}) failed: {error!r}",
                      file=sys.stderr)


def run_runtime(args, runtime: str, extra_env: dict[str, str], data_dir: Path, raw: dict, urls: list[str],
                uploads: list[bytes], busy_at_start: bool) -> dict:
    """One `trooply serve` with this CLIP runtime on a fresh data dir: ingest, then every mode and level."""
    env = runtime_env(args, runtime, extra_env, data_dir)
    summary: dict = {"runtime": runtime, "levels": []}
    server, summary["clip_runtime"] = start_server(runtime, env, data_dir, args.startup_timeout)
    try:
        creds = create_tenant(env)
        done = ingest(server.base_url, creds["secret_key"], urls, args.ingest_timeout)
        summary["ingest"] = done
        print(f"ingested {args.products} products in {done['seconds']:.1f}s "
              f"({args.products / done['seconds']:.1f}/s): {done['counts']}", flush=True)
        if done["errors"]:
            print(f"  ingest errors (first): {done['errors']}", flush=True)

        build = builders(urls, uploads)
        key = creds["publishable_key"]
        metrics_client = httpx.Client(base_url=server.base_url, timeout=30)
        print(f"\n{args.seconds:g}s per level; latency over 200s only; /raw8 = req/s / raw batch-8 throughput; "
              f"client pause after 429/503: {args.retry_pause:g}s", flush=True)
        print(HEADER, flush=True)
        for mode in args.modes:
            warm_up(server.base_url, key, mode, build[mode], args.warmup)
            for concurrency in args.concurrency:
                server.check_alive()
                before, srv0 = scrape(metrics_client), server.cpu_seconds()
                level = Level(server.base_url, key, mode, build[mode], concurrency, args.seconds,
                              args.retry_pause).run()
                after, srv1 = scrape(metrics_client), server.cpu_seconds()
                level["batch_mean"], level["server_shed_metric"] = metric_deltas(before, after)
                if srv0 is not None and srv1 is not None:
                    level["server_cpu_pct"] = 100 * (srv1 - srv0) / level["seconds"]
                raw8 = raw["text_per_s_batch8"] if mode == "text" else raw["image_per_s_batch8"]
                level["ratio_to_raw8"] = level["req_per_s"] / raw8
                summary["levels"].append(level)
                print(row(level), flush=True)
        metrics_client.close()

        notes = []
        text_levels = [level for level in summary["levels"] if level["mode"] == "text"]
        if text_levels:
            sent = sum(level["sent"] for level in text_levels)
            distinct = sum(level["distinct_phrases"] for level in text_levels)
            notes.append(f"text: queries drawn from {VOCABULARY:,} generated phrases (adjective x colour x material x "
                         f"item x number): {distinct:,} distinct of {sent:,} sent (counted per level), so nearly all "
                         "miss the service's text-embedding cache")
        if any(level["rate_limited_codes"].get("too_many_fetches") for level in summary["levels"]):
            notes.append("url: 429 too_many_fetches is the per-tenant cap on query image fetches in flight "
                         "(TROOPLY_QUERY_FETCH_PER_TENANT, default 8); "
                         "--env TROOPLY_QUERY_FETCH_PER_TENANT=64 lifts it")
        busy = [level for level in summary["levels"] if level["client_cpu_pct"] > 80]
        if busy:
            notes.append("the load generator used >80% of a core at "
                         + ", ".join(f"{level['mode']}@{level['concurrency']}" for level in busy)
                         + ": there the client may be the bottleneck")
        if (os.cpu_count() or 1) <= 4:
            notes.append(f"only {os.cpu_count()} cores: the server and this load generator compete for them")
        if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) + 1 or busy_at_start:
            notes.append("other processes were busy on this machine (load average above): raw and served figures "
                         "are both noisy; compare runs on a quiet machine")
        for note in notes:
            print(f"note: {note}")

        summary["targets"] = targets(summary["levels"], raw)
        print("\nissue targets (image modes; computed figures, not pass/fail):")
        missing = [c for c in TARGET_CONCURRENCY if c not in args.concurrency]
        if missing:
            print(f"  (concurrency {' and '.join(map(str, missing))} not measured: add to --concurrency; '-' = n/a)")
        for entry in summary["targets"]:
            a, b, c = (entry.get("a_req8_over_raw_batched"), entry.get("b_req32_over_req8"),
                       entry.get("c_p95_8_over_raw_batch8_ms"))
            print(f"  {entry['mode']:6} (a) req/s@8 / raw batched images/s = {fmt(a, '.2f'):>5}  (target >= 0.75)")
            print(f"  {entry['mode']:6} (b) req/s@32 / req/s@8             = {fmt(b, '.2f'):>5}  (target >= 0.9)")
            print(f"  {entry['mode']:6} (c) p95@8 / raw batch-of-8 time     = {fmt(c, '.2f'):>5}  (target <= 2.5)")
        if not summary["targets"]:
            print("  (no image or url mode measured)")

        log = server.log_path.read_text(errors="replace").splitlines()
        problems = [line for line in log if "Traceback" in line or '"ERROR"' in line or "ERROR" in line[:40]]
        summary["server_log_error_lines"] = len(problems)
        if problems:
            print(f"\nserver log: {len(problems)} error lines; the first few:")
            for line in problems[:5]:
                print(f"  {line[:400]}")
        return summary
    finally:
        server.stop()


def runtimes_side_by_side(runs: list[dict], products: int, rounds: int) -> None:
    """Each runtime's ingest rate and each level's req/s and p50, with ratios to the first runtime."""
    first = runs[0]
    how = f"taking turns in {rounds} rounds" if rounds > 1 else "one server after the other"
    print(f"\nruntimes side by side (one run, {how}; x = ratio to {first['runtime']}):")
    print(f"{'runtime':40} {'serving':12} {'probe':>8} {'ingest/s':>9} {'x':>5}")
    for run in runs:
        served = run.get("clip_runtime", {})
        rate = products / run["ingest"]["seconds"]
        probe = served.get("probe_min_cosine")
        print(f"{run['runtime']:40} {served.get('runtime', '?') + ' ' + served.get('precision', ''):12} "
              f"{'-' if probe is None else format(probe, '.5f'):>8} {rate:9.1f} "
              f"{rate / (products / first['ingest']['seconds']):5.2f}")
    print(f"\n{'mode':6} {'conc':>4} {'runtime':40} {'req/s':>8} {'x':>5} {'p50 ms':>8} {'x':>5}")
    base = {(level["mode"], level["concurrency"]): level for level in first["levels"]}
    for level0 in first["levels"]:
        reference = base[level0["mode"], level0["concurrency"]]
        for run in runs:
            level = next(lv for lv in run["levels"]
                         if (lv["mode"], lv["concurrency"]) == (level0["mode"], level0["concurrency"]))
            speed = level["req_per_s"] / reference["req_per_s"] if reference["req_per_s"] else None
            latency = (level["p50_ms"] / reference["p50_ms"]
                       if level["p50_ms"] is not None and reference["p50_ms"] else None)
            print(f"{level0['mode']:6} {level0['concurrency']:>4} {run['runtime'][:40]:40} {level['req_per_s']:8.1f} "
                  f"{fmt(speed, '.2f'):>5} {fmt(level['p50_ms']):>8} {fmt(latency, '.2f'):>5}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seconds", type=float, default=15.0, help="per mode and concurrency level")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra server environment, repeatable (e.g. batching settings to compare)")
    parser.add_argument("--runtime", nargs="+", metavar="RUNTIME[:KEY=VALUE,...]",
                        help="TROOPLY_CLIP_RUNTIME of the server (auto, torch, onnx, onnx-int8), optionally with env "
                        "of its own (onnx-int8:TROOPLY_INGEST_WORKERS=4); several: one server each, printed side by "
                        "side (default: --env's TROOPLY_CLIP_RUNTIME, else auto)")
    parser.add_argument("--rounds", type=int, help="with several runtimes: all servers up at once, ingest and each "
                        "level split into this many rounds that the runtimes take in turn (default 3); 1: one "
                        "runtime after the other, each on its own")
    parser.add_argument("--export-dir", type=Path, default=Path(tempfile.gettempdir()) / "trooply-bench-onnx",
                        help="TROOPLY_CLIP_EXPORT_DIR of every server: the ONNX exports are reused between runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write a JSON summary here")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted requests per mode before its levels")
    parser.add_argument("--raw-seconds", type=float, default=3.0, help="per raw measurement; 0 skips them")
    parser.add_argument("--retry-pause", type=float, default=0.05,
                        help="seconds a client pauses after a 429/503 before its next request")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--ingest-timeout", type=float, default=3600.0)
    args = parser.parse_args()
    extra_env = parse_env(args.env)
    runtimes = args.runtime or [extra_env.get("TROOPLY_CLIP_RUNTIME", "auto")]
    for spec in runtimes:
        parse_runtime(spec)
    args.rounds = args.rounds or (3 if len(runtimes) > 1 else 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks on `kill`

    torch_threads = extra_env.get("TROOPLY_TORCH_THREADS") or os.environ.get("TROOPLY_TORCH_THREADS")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    busy_at_start = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    print(f"model {args.model}, random weights; {os.cpu_count()} CPU cores, load average {load} before we start; "
          f"server env extra: {extra_env or 'none'}; runtimes: {', '.join(runtimes)}", flush=True)
    if args.raw_seconds <= 0:  # a large model on a busy CPU: its raw passes alone would take minutes
        nan = float("nan")
        raw = {"device": "skipped (--raw-seconds 0)", "precision": "-", "torch_threads": "-"} | dict.fromkeys(
            ("image_per_s_batch8", "image_per_s_batch1", "image_batch8_ms", "image_batch1_ms", "text_per_s_batch8",
             "text_per_s_batch1", "text_batch8_ms", "text_batch1_ms"), nan)
    else:
        raw = measure_raw(args.model, args.raw_seconds, int(torch_threads) if torch_threads else None)
    import torch
    if torch.cuda.is_available():  # hand the raw model's GPU memory back before the server loads its own
        gc.collect()
        torch.cuda.empty_cache()
    print(f"\nraw open_clip in this process ({raw['device']}, {raw['precision']}, {raw['torch_threads']} torch threads;"
          " ~300 px PIL image, preprocessing included;"
          " from the median pass):")
    print(f"  image  batch 8: {raw['image_per_s_batch8']:8.1f} images/s"
          f"   one batch of 8: {raw['image_batch8_ms']:8.1f} ms")
    print(f"  image  batch 1: {raw['image_per_s_batch1']:8.1f} images/s"
          f"   one image:      {raw['image_batch1_ms']:8.1f} ms")
    print(f"  text   batch 8: {raw['text_per_s_batch8']:8.1f} texts/s "
          f"   one batch of 8: {raw['text_batch8_ms']:8.1f} ms")
    print(f"  text   batch 1: {raw['text_per_s_batch1']:8.1f} texts/s "
          f"   one text:       {raw['text_batch1_ms']:8.1f} ms", flush=True)

    data_dir = Path(tempfile.mkdtemp(prefix="trooply-load-"))
    images = ImageServer()
    summary: dict = {"model": args.model, "products": args.products, "seconds": args.seconds,
                     "env": extra_env, "raw": raw, "runtimes": []}
    try:
        started = time.perf_counter()
        urls = []
        for i in range(args.products):
            images.add_image(f"/p{i}.jpg", jpeg(photo(i)), "image/jpeg")
            urls.append(images.url(f"/p{i}.jpg"))
        uploads = [jpeg(photo(50_000 + i, side=300)) for i in range(16)]
        print(f"\n{args.products} product images generated in {time.perf_counter() - started:.1f}s, "
              f"served from {images.url('/')}", flush=True)
        if args.rounds > 1:
            summary["runtimes"] = run_interleaved(args, runtimes, extra_env, data_dir, raw, urls, uploads)
        else:
            for number, runtime in enumerate(runtimes):
                summary["runtimes"].append(run_runtime(args, runtime, extra_env, data_dir / f"{number}", raw,
                                                       urls, uploads, busy_at_start))
        # The first runtime's figures where a single run put them.
        summary |= {key: summary["runtimes"][0][key] for key in ("ingest", "levels", "targets")}
        if len(runtimes) > 1:
            runtimes_side_by_side(summary["runtimes"], args.products, args.rounds)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
            print(f"\nJSON summary written to {args.json}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        images.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
