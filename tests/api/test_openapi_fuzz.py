"""Schemathesis over /openapi.json: generated requests for every operation, JSON and multipart, must never
meet a server error. Bounded examples keep it to a minute; a failure prints the request that reproduces it."""

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app

EXAMPLES_PER_OPERATION = 20


class WithoutLifespan:
    """The app as schemathesis sees it: the module fixture starts and stops the real lifespan once, while
    schemathesis, which would run it per operation, only gets an acknowledgement."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


# Built at collection, when the schema is read. Generated URLs and uploads fail fast: nothing listens on
# the fuzzed hosts.
APP = create_app(make_settings(Path(tempfile.mkdtemp(prefix="trooply-fuzz-"))))
# Key rotation would revoke the key every later generated request carries (test_account_and_portal.py covers it).
schema = schemathesis.openapi.from_asgi("/openapi.json", WithoutLifespan(APP)).exclude(path="/v1/keys/rotate")


@pytest.fixture(scope="module")
def running_app():
    with TestClient(APP) as client:
        yield APP, new_tenant(client, "fuzz", plan="pro")


def test_every_self_parsed_route_documents_its_body():
    paths = APP.openapi()["paths"]
    for path in ("/v1/search/image", "/v1/search/crop", "/v1/search/multi", "/v1/search/fusion",
                 "/v1/search/voice", "/v1/detect", "/v1/embed"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert "multipart/form-data" in content, path
        form = content["multipart/form-data"]["schema"]["properties"]
        assert {"file", "files", "audio"} & set(form), path


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_meets_a_server_error(case, running_app):
    # The secret key holds every scope, so generation reaches past authentication on every route.
    case.call_and_validate(headers=auth(running_app[1].secret_key), checks=[not_a_server_error])
