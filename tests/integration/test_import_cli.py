"""`trooply import FILE` as a merchant runs it: CSV and JSONL files with bad rows, into this installation
(--tenant: the command ingests itself, embedded) or a running server (--url, --key); a re-run resumes."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import auth
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.services import create_tenant_cli, free_port, serving, trooply_env


@pytest.fixture(scope="module")
def images():
    with ImageServer() as server:
        for i in range(6):
            server.add_image(f"/p{i}.png", solid_png(40 + i, 40, (40 * i, 120, 60)))
        yield server


def trooply(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trooply.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def csv_file(directory: Path, images: ImageServer) -> Path:
    rows = ["id,title,image_url,category,price,in_stock,attributes.colour,attributes.size"]
    rows += [f"p{i},Product {i},{images.url(f'/p{i}.png')},shoes,{10 + i},yes,red,{40 + i}" for i in range(4)]
    rows.append(f"bad-price,Bad,{images.url('/p1.png')},shoes,cheap,yes,red,40")       # line 6
    rows.append(f"gone,Gone,{images.url('/missing.png')},shoes,5,no,blue,41")           # line 7: fails at fetch
    rows.append("bad-url,Bad URL,ftp://example.com/x.png,shoes,5,no,blue,41")          # line 8
    rows.append(f"p0,Duplicate,{images.url('/p0.png')},shoes,1,yes,red,40")             # line 9
    path = directory / "products.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_with_bad_rows_then_a_resuming_rerun(tmp_path: Path, images: ImageServer) -> None:
    env = trooply_env(tmp_path / "data")
    tenant = create_tenant_cli(env)
    path = csv_file(tmp_path, images)

    first = trooply("import", str(path), "--tenant", tenant["tenant_id"], "--json", env=env)
    assert first.returncode == 1, first.stderr  # rows were rejected and a product failed: worth a look
    result = json.loads(first.stdout)
    assert (result["rows"], result["accepted"], result["unchanged"]) == (8, 5, 0)
    assert (result["indexed"], result["failed"], result["failed_by_code"]) == (4, 1, {"image_not_found": 1})
    assert [(r["line"], r["product_id"], r["code"], r["field"]) for r in result["rejected"]] == [
        (6, "bad-price", "validation_error", "price"), (8, "bad-url", "validation_error", "image_url"),
        (9, "p0", "duplicate_id", "id")]
    assert [p["product_id"] for p in result["failed_products"]] == ["gone"]
    assert "Indexing" in first.stderr  # the progress bar followed the job

    # Resumable: the stored products are skipped; only the one that failed is tried again.
    second = trooply("import", str(path), "--tenant", tenant["tenant_id"], env=env)
    assert second.returncode == 1, second.stderr
    summary = second.stdout
    for expected in ("8 rows", "indexed           0", "failed            1   image_not_found 1",
                     "unchanged         4", "rejected          3", "line 6 (bad-price): validation_error price: "
                     "'cheap' is not a number", "failed gone: image_not_found"):
        assert expected in summary, summary

    forced = trooply("import", str(path), "--tenant", tenant["tenant_id"], "--force", "--json", env=env)
    assert (json.loads(forced.stdout)["accepted"], json.loads(forced.stdout)["unchanged"]) == (5, 0)


def test_jsonl_with_bad_lines(tmp_path: Path, images: ImageServer) -> None:
    env = trooply_env(tmp_path / "data")
    tenant = create_tenant_cli(env)
    lines = [json.dumps({"id": f"j{i}", "image_url": images.url(f"/p{i}.png"), "price": 5 + i,
                         "attributes": {"size": 40 + i}}) for i in range(3)]
    lines.insert(1, '{"id": "broken",')
    lines.append(json.dumps({"id": "j9", "image_url": images.url("/p5.png"), "price": "5"}))
    lines.append(json.dumps(["not", "an", "object"]))
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n\n")

    done = trooply("import", str(path), "--tenant", tenant["tenant_id"], "--json", "--batch-size", "2", env=env)
    result = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    assert (result["rows"], result["accepted"], result["indexed"], result["failed"]) == (6, 3, 3, 0)
    assert len(result["jobs"]) == 2  # batches of 2
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [
        (2, "invalid_json"), (5, "validation_error"), (6, "invalid_json")]

    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(line for i, line in enumerate(lines) if i in (0, 2, 3)) + "\n")
    rerun = trooply("import", str(clean), "--tenant", tenant["tenant_id"], "--json", env=env)
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["unchanged"] == 3


def test_into_a_running_server_with_its_secret_key(tmp_path: Path, images: ImageServer) -> None:
    env = trooply_env(tmp_path / "data")
    with serving(env, tmp_path / "serve.log") as url:
        tenant = create_tenant_cli(env)
        path = csv_file(tmp_path, images)

        # The data directory belongs to the server: a local import says where to go instead.
        locked = trooply("import", str(path), "--tenant", tenant["tenant_id"], env=env)
        assert locked.returncode == 1 and "--url URL --key SECRET_KEY" in locked.stderr, locked.stderr

        remote_env = {**env, "TROOPLY_API_KEY": tenant["secret_key"]}
        done = trooply("import", str(path), "--url", url, "--json", env=remote_env)
        result = json.loads(done.stdout)
        assert (result["indexed"], result["failed"], len(result["rejected"])) == (4, 1, 3), done.stderr
        stats = httpx.get(f"{url}/v1/catalog/stats", headers=auth(tenant["secret_key"])).json()
        assert stats["counts"] == {"pending": 0, "indexed": 4, "failed": 1}

        again = trooply("import", str(path), "--url", url, "--key", tenant["secret_key"], "--json", env=env)
        assert json.loads(again.stdout)["unchanged"] == 4

        refused = trooply("import", str(path), "--url", url, "--key", tenant["publishable_key"], env=env)
        assert refused.returncode == 1 and "insufficient_scope" in refused.stderr
        unreachable = trooply("import", str(path), "--url", f"http://127.0.0.1:{free_port()}", "--key", "sk_x", env=env)
        assert unreachable.returncode == 1 and "server_unreachable" in unreachable.stderr


def test_arguments_are_checked_before_anything_runs(tmp_path: Path) -> None:
    env = trooply_env(tmp_path / "data")
    path = tmp_path / "p.csv"
    path.write_text("id,image_url\n")
    for args, message in ((["--tenant", "t", "--url", "http://x"], "takes --tenant"),
                          ([], "takes --tenant"),
                          (["--url", "http://x"], "takes --tenant"),
                          (["--tenant", "t", "--batch-size", "1001"], "--batch-size"),
                          (["--tenant", "ten_nope"], "tenant_not_found")):
        answer = trooply("import", str(path), *args, env={k: v for k, v in env.items() if k != "TROOPLY_API_KEY"})
        assert answer.returncode != 0 and message in answer.stderr, (args, answer.stderr)
    missing = trooply("import", str(tmp_path / "nope.csv"), "--tenant", "t", env=env)
    assert missing.returncode == 2 and "no file" in missing.stderr
    xlsx = tmp_path / "p.xlsx"
    xlsx.write_text("x")
    assert "unsupported_import_format" in trooply("import", str(xlsx), "--tenant", "t", env=env).stderr
