"""A Python client generated from /openapi.json with a standard generator (openapi-python-client), offline, then
used against a real server: ingest, search by JSON and by multipart, and read an error as the typed envelope.

The generator pins httpx below the project's own, so it lives in a venv of its own (tests/run.sh makes
.venv-openapi); the generated code needs only httpx and attrs, both in the project's venv."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.services import create_tenant_cli, serving, trooply_env
from trooply.api.app import create_app

ROOT = Path(__file__).parents[2]
TOOL_BIN = ROOT / ".venv-openapi" / "bin"


def generator() -> str:
    found = shutil.which("openapi-python-client", path=f"{TOOL_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail("openapi-python-client is not installed: tests/run.sh installs it in .venv-openapi")
    return found


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory):
    """The client, generated from the document the app builds (no server, no network)."""
    where = tmp_path_factory.mktemp("generated")
    with TestClient(create_app(make_settings(where / "data"))) as app_client:
        document = app_client.get("/openapi.json").json()
    (where / "openapi.json").write_text(json.dumps(document))
    tool = generator()
    env = {**os.environ, "PATH": f"{Path(tool).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([tool, "generate", "--path", str(where / "openapi.json"), "--output-path",
                           str(where / "trooply_client"), "--meta", "none", "--fail-on-warning"],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("trooply_client")
    finally:
        sys.path.remove(str(where))


def test_a_generated_client_ingests_searches_and_reads_errors(client_package, tmp_path):
    models = importlib.import_module("trooply_client.models")
    types = importlib.import_module("trooply_client.types")
    submit_products, get_job, get_product = (importlib.import_module(f"trooply_client.api.catalog.{name}")
                                             for name in ("submit_products", "get_job", "get_product"))
    search_text, search_image = (importlib.import_module(f"trooply_client.api.search.{name}")
                                 for name in ("search_text", "search_image"))
    with ImageServer() as images:
        images.add_image("/red.png", solid_png(64, 64, (200, 20, 20)))
        images.add_image("/blue.png", solid_png(64, 64, (20, 20, 200)))
        env = trooply_env(tmp_path / "data")
        keys = create_tenant_cli(env)
        with serving(env, tmp_path / "serve.log") as base_url:
            secret = client_package.AuthenticatedClient(base_url=base_url, token=keys["secret_key"])
            public = client_package.AuthenticatedClient(base_url=base_url, token=keys["publishable_key"])

            batch = models.ProductBatchIn(products=[
                models.ProductIn(id="red", image_url=images.url("/red.png"), title="Red mug", price=12.0),
                models.ProductIn(id="blue", image_url=images.url("/blue.png"), title="Blue mug")])
            submitted = submit_products.sync(client=secret, body=batch)
            assert isinstance(submitted, models.SubmissionOut) and submitted.accepted == 2
            deadline = time.monotonic() + 60
            while (job := get_job.sync(submitted.job_id, client=secret)).status != "completed":
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            assert job.counts["indexed"] == 2

            found = search_text.sync(client=public, body=models.TextSearchRequest(query="red mug", limit=5))
            assert isinstance(found, models.SearchEnvelope)
            assert {hit.id for hit in found.results} == {"red", "blue"}

            upload = types.File(payload=solid_png(64, 64, (200, 20, 20)), file_name="q.png", mime_type="image/png")
            by_image = search_image.sync(client=public, body=models.SearchImageBody(file=upload, limit=1))
            assert isinstance(by_image, models.SearchEnvelope) and len(by_image.results) == 1

            # The publishable key may not read the catalogue: the answer parses as the error envelope.
            refused = get_product.sync_detailed("red", client=public)
            assert refused.status_code == 403
            assert isinstance(refused.parsed, models.ErrorEnvelope)
            assert refused.parsed.error.code == "insufficient_scope"
            missing = get_product.sync("nothing-here", client=secret)
            assert isinstance(missing, models.ErrorEnvelope) and missing.error.code == "product_not_found"
