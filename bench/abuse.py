"""Abuse against a live `trooply serve` while another tenant searches: that tenant's latency and the server's
memory under each stall of issue 20, beside a quiet baseline measured in the same run.

    .venv/bin/python bench/abuse.py                              # every attack, 8 s each
    .venv/bin/python bench/abuse.py --seconds 15 --attackers 4 --only unauthenticated publishable

1. `trooply serve` starts as a subprocess on 127.0.0.1 (the tiny random-weight model, rate limits off, so
   nothing but the hardening stands between the attacker and the server). Two pro tenants: the victim, with
   --products small JPEGs served from this process, and the attacker, with as many.
2. Each phase runs --seconds: --victims threads search text back to back with the victim's publishable key
   while --attackers threads repeat one attack (none in the baseline). A sampler reads the server's VmRSS
   every 20 ms.
3. Per phase: the victim's searches (p50, p95, errors), the p95 as a multiple of the baseline's, the server's
   peak RSS above the baseline's peak, the server's CPU (% of one core), and what the attacker was answered.
   The load generator shares the machine: on a small one, sending 8 MB bodies costs the clients CPU too;
   --control adds the same attacks sent to a process that refuses them unread (NAME@sink), for comparison
   (unauthenticated, publishable and import-line: most import-line requests are refused unread too, 429 while
   the attacker's previous import holds its one slot).

Attacks: `unauthenticated` — an 8 MB [1,1,…] to /v1/search/text without a key; `publishable` — /v1/search/image
with ten ~1 MB `filters` fields and one image; `import-line` — a JSONL import (secret key) whose one line is a
--import-mb MB array; `import-header` — a CSV whose header has 100,000 columns; `scans` — duplicate scans at
thresholds 0.5, 0.5001, … plus synchronous GET /v1/duplicates calls. Targets (issue 20): the unauthenticated and
publishable attacks move the victim's p95 by ≤ 1.5× and the RSS by ≤ 100 MB. Prints figures, asserts nothing.
"""

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
from PIL import Image

from tests.support.image_server import ImageServer
from tests.support.services import free_port, stop, trooply_env

REPO = Path(__file__).resolve().parent.parent
ATTACKS = ("unauthenticated", "publishable", "import-line", "import-header", "scans")
WORDS = ("red", "navy", "leather", "canvas", "sneaker", "boot", "bag", "shirt", "lamp", "watch", "vintage", "slim")


def jpeg(seed: int, side: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((side, side, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=80)
    return out.getvalue()


class Server:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trooply.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError("server not ready")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def create_tenant(env: dict[str, str], name: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "trooply.cli", "tenants", "create", name, "--plan", "pro", "--json"],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout)


def ingest(base_url: str, key: str, urls: list[str]) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        products = [{"id": f"p{i}", "image_url": url, "title": f"{WORDS[i % len(WORDS)]} product {i}",
                     "price": float(5 + i)} for i, url in enumerate(urls)]
        job = client.post("/v1/products", json={"products": products}).json()["job_id"]
        while client.get(f"/v1/jobs/{job}").json()["status"] in ("pending", "running"):
            time.sleep(0.5)


def attack_unauthenticated(base_url: str, keys: dict) -> Callable[[httpx.Client], int]:
    body = b"[" + b"1," * (4 * 1024 * 1024 - 1024) + b"1]"  # just under the 8 MiB cap of any JSON body
    return lambda client: client.post(f"{base_url}/v1/search/text", content=body,
                                      headers={"Content-Type": "application/json"}).status_code


def encoded(url: str, **parts) -> tuple[bytes, dict[str, str]]:
    """A multipart body encoded once, so that each attacker thread only sends bytes: on a small machine the load
    generator would otherwise spend more CPU building forms than the server spends refusing them."""
    request = httpx.Request("POST", url, **parts)
    return request.read(), {"Content-Type": request.headers["Content-Type"]}


def sender(url: str, key: str, **parts) -> Callable[[httpx.Client], int]:
    body, headers = encoded(url, **parts)
    headers["Authorization"] = f"Bearer {key}"
    return lambda client: client.post(url, content=body, headers=headers).status_code


def attack_publishable(base_url: str, keys: dict) -> Callable[[httpx.Client], int]:
    field = json.dumps({"brand": ["x" * 100] * 10_000})  # ~1 MB of JSON
    return sender(f"{base_url}/v1/search/image", keys["attacker"]["publishable_key"], data={"filters": [field] * 10},
                  files={"file": ("q.jpg", jpeg(7), "image/jpeg")})


def attack_import_line(base_url: str, keys: dict, megabytes: int) -> Callable[[httpx.Client], int]:
    line = b"[" + b"1," * (megabytes * 512 * 1024 - 1) + b"1]"
    data = b'{"id": "a", "image_url": "http://127.0.0.1:9/a.jpg"}\n' + line + b"\n"
    return sender(f"{base_url}/v1/imports", keys["attacker"]["secret_key"],
                  files={"file": ("big.jsonl", data, "application/x-ndjson")})


def attack_import_header(base_url: str, keys: dict) -> Callable[[httpx.Client], int]:
    header = ",".join(["id", "image_url", *(f"attributes.c{i}" for i in range(100_000))]).encode()
    return sender(f"{base_url}/v1/imports", keys["attacker"]["secret_key"],
                  files={"file": ("wide.csv", header + b"\nsku-1,http://127.0.0.1:9/a.jpg\n", "text/csv")})


def attack_scans(base_url: str, keys: dict) -> Callable[[httpx.Client], int]:
    headers = {"Authorization": f"Bearer {keys['attacker']['secret_key']}"}
    turn = iter(range(10**9))

    def one(client: httpx.Client) -> int:
        n = next(turn)
        if n % 2:
            return client.get(f"{base_url}/v1/duplicates", params={"threshold": 0.5}, headers=headers).status_code
        return client.post(f"{base_url}/v1/duplicates/scan", json={"threshold": 0.5 + n / 10_000},
                           headers=headers).status_code
    return one


SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Refuse(BaseHTTPRequestHandler):
    def do_POST(self):  # answered after the headers, the body left unread, as the server refuses it
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Refuse).serve_forever()
"""


def start_sink() -> tuple[subprocess.Popen, str]:
    """A process that refuses every POST unread: the same attack sent there costs only the load generator and the
    kernel, so its phase shows how much of the victim's slowdown is this machine's, not the server's."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SINK, str(port)], start_new_session=True)
    for _ in range(100):
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"x", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def run_phase(server: Server, keys: dict, attack: Callable[[httpx.Client], int] | None, args) -> dict:
    stop_at = time.monotonic() + args.seconds
    latencies: list[float] = []
    victim_errors: Counter[str] = Counter()
    answers: Counter[int] = Counter()
    peak = [server.rss_mb()]
    lock = threading.Lock()
    victim_headers = {"Authorization": f"Bearer {keys['victim']['publishable_key']}"}

    def victim(slot: int) -> None:
        rng = random.Random(slot)
        with httpx.Client(base_url=server.base_url, headers=victim_headers, timeout=60) as client:
            while time.monotonic() < stop_at:
                query = " ".join(rng.choice(WORDS) for _ in range(3)) + f" {rng.randrange(10**6)}"
                started = time.perf_counter()
                try:
                    response = client.post("/v1/search/text", json={"query": query, "limit": 10})
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == "200":
                        latencies.append(elapsed)
                    else:
                        victim_errors[status] += 1

    def attacker() -> None:
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < stop_at:
                try:
                    status = attack(client) if attack else 0
                except httpx.HTTPError:
                    status = -1
                with lock:
                    answers[status] += 1

    def sampler() -> None:
        while time.monotonic() < stop_at + 0.5:
            peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.02)

    cpu_before, started = server.cpu_seconds(), time.monotonic()
    threads = [threading.Thread(target=victim, args=(n,)) for n in range(args.victims)]
    threads.append(threading.Thread(target=sampler))
    if attack is not None:
        threads += [threading.Thread(target=attacker) for _ in range(args.attackers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server_cpu = 100 * (server.cpu_seconds() - cpu_before) / (time.monotonic() - started)
    p50, p95 = (float(np.percentile(latencies, q)) for q in (50, 95)) if latencies else (float("nan"),) * 2
    return {"searches": len(latencies), "p50_ms": p50, "p95_ms": p95, "victim_errors": dict(victim_errors),
            "peak_rss_mb": peak[0], "server_cpu_pct": server_cpu, "attacker_answers": dict(answers)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase")
    parser.add_argument("--victims", type=int, default=2, help="threads searching as the victim tenant")
    parser.add_argument("--attackers", type=int, default=4, help="threads repeating the attack")
    parser.add_argument("--products", type=int, default=200, help="per tenant")
    parser.add_argument("--import-mb", type=int, default=40, help="size of the one JSONL line of import-line")
    parser.add_argument("--only", nargs="*", choices=ATTACKS, default=list(ATTACKS))
    parser.add_argument("--control", action="store_true",
                        help="after the unauthenticated, publishable and import-line phases, the same attack sent "
                             "to a process that refuses it unread (NAME@sink): the machine's share of the slowdown")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trooply-abuse-"))
    env = trooply_env(work / "data", TROOPLY_RATE_LIMIT_PER_IP="0", TROOPLY_RATE_LIMIT_PER_TENANT="0",
                      TROOPLY_LOG_LEVEL="WARNING", TROOPLY_DUPLICATES_SYNC_MAX_PRODUCTS="100000")
    subprocess.run([sys.executable, "-m", "trooply.cli", "migrate"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    keys = {name: create_tenant(env, name) for name in ("victim", "attacker")}
    server = Server(env, work / "server.log")
    builders = {"unauthenticated": attack_unauthenticated, "publishable": attack_publishable,
                "import-line": lambda url, k: attack_import_line(url, k, args.import_mb),
                "import-header": attack_import_header, "scans": attack_scans}
    results: dict[str, dict] = {}
    try:
        server.wait_ready()
        with ImageServer() as images:
            for n in range(args.products):
                images.add_image(f"/p{n}.jpg", jpeg(n), "image/jpeg")
            urls = [images.url(f"/p{n}.jpg") for n in range(args.products)]
            for tenant in keys.values():
                ingest(server.base_url, tenant["secret_key"], urls)
        results["baseline"] = run_phase(server, keys, None, args)
        for name in args.only:
            results[name] = run_phase(server, keys, builders[name](server.base_url, keys), args)
            if args.control and name in ("unauthenticated", "publishable", "import-line"):
                sink, sink_url = start_sink()
                try:
                    results[f"{name}@sink"] = run_phase(server, keys, builders[name](sink_url, keys), args)
                finally:
                    stop(sink)
    finally:
        stop(server.process)

    base = results["baseline"]
    print(f"\n{args.victims} victim threads searching text, {args.attackers} attacker threads, {args.seconds:g} s "
          f"per phase, {os.cpu_count()} CPUs")
    print(f"{'phase':<16}{'searches':>9}{'p50 ms':>9}{'p95 ms':>9}{'p95 x':>7}{'peak RSS MB':>13}{'+MB':>7}"
          f"{'srv cpu%':>9}  victim errors / attacker answers")
    for name, phase in results.items():
        ratio = phase["p95_ms"] / base["p95_ms"] if base["p95_ms"] else float("nan")
        print(f"{name:<16}{phase['searches']:>9}{phase['p50_ms']:>9.1f}{phase['p95_ms']:>9.1f}{ratio:>7.2f}"
              f"{phase['peak_rss_mb']:>13.0f}{phase['peak_rss_mb'] - base['peak_rss_mb']:>7.0f}"
              f"{phase['server_cpu_pct']:>9.0f}  "
              f"{phase['victim_errors'] or '-'} / {phase['attacker_answers'] or '-'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
