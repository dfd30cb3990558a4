"""An indexed shop for HTTP tests: the app, the real 127.0.0.1 image server, tenants with their keys, and
each tenant's catalogue posted and ingested to the end."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from trooply.api.app import create_app
from trooply.tenancy.service import TenantCredentials

Product = dict[str, Any]
# Registers what a path-to-bytes mapping cannot say: statuses, slow, flaky and redirecting paths.
Routes = Callable[[ImageServer], None]


@dataclass(frozen=True)
class Shop:
    client: TestClient
    server: ImageServer
    tenants: dict[str, TenantCredentials]  # by catalogue name, which is also the tenant's name
    jobs: dict[str, dict[str, Any]]  # each stocked tenant's finished ingest job


def on_server(products: Sequence[Product], server: ImageServer) -> list[Product]:
    """An image URL given as a path ("/red.png") points at the image server; a full URL is left alone."""
    return [{**p, "image_url": server.url(p["image_url"])} if p["image_url"].startswith("/") else p
            for p in products]


def post_catalogue(client: TestClient, tenant: TenantCredentials, products: Sequence[Product]) -> str:
    response = client.post("/v1/products", json={"products": products}, headers=auth(tenant.secret_key))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(products)
    return str(response.json()["job_id"])


@contextmanager
def open_shop(data_dir: Path, catalogues: Mapping[str, Sequence[Product]], *,
              images: Mapping[str, bytes] | None = None, routes: Routes | None = None,
              **settings: Any) -> Iterator[Shop]:
    """One tenant per catalogue (an empty one gets keys and no products); `settings` override the tests'."""
    with TestClient(create_app(make_settings(data_dir, **settings))) as client, ImageServer() as server:
        for path, data in (images or {}).items():
            server.add_image(path, data)
        if routes is not None:
            routes(server)
        tenants = {name: new_tenant(client, name) for name in catalogues}
        posted = {name: post_catalogue(client, tenants[name], on_server(products, server))
                  for name, products in catalogues.items() if products}
        jobs = {name: wait_for_job(client, tenants[name].secret_key, job_id) for name, job_id in posted.items()}
        yield Shop(client, server, tenants, jobs)
