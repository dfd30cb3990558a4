"""CatalogService on its own (real SQLite, the real index): what `submit` stores, answers and queues, without the
HTTP layer (tests/api/ covers the routes)."""

import pytest

from tests.conftest import make_settings
from trooply.catalog.schemas import ProductIn
from trooply.catalog.service import CatalogService
from trooply.config import PlanLimits
from trooply.container import Container
from trooply.errors import QuotaExceeded
from trooply.tasks.names import INGEST_TASK


class SentTasks:
    """The queue as the service sees it: what it sends, in order (no task runs)."""

    runs_here = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    def send(self, name, args, delay=0.0):
        self.sent.append((name, list(args)))


@pytest.fixture
def setup(tmp_path):
    settings = make_settings(tmp_path, encode_batch_size=4,
                             plans={"free": PlanLimits(max_products=6, monthly_item_calls=None, rate_limit=0)})
    container = Container(settings)
    container.prepare()
    queue = SentTasks()
    catalog = CatalogService(container.db, container.spaces, queue, settings,
                             container.classifier.family_of_category)
    tenant = container.tenants.create_tenant("acme", "free").tenant_id
    yield catalog, queue, tenant
    container.stop()


def products(*ids: str, colour: str = "red") -> list[ProductIn]:
    return [ProductIn(id=pid, image_url=f"http://127.0.0.1:9/{pid}.png", title=f"{colour} {pid}") for pid in ids]


def test_submit_stores_the_products_pending_and_queues_them_in_ingest_batches(setup):
    catalog, queue, tenant = setup
    submission = catalog.submit(tenant, products("a", "b", "c", "d", "e"))
    assert (submission.accepted, submission.unchanged, submission.rejected) == (5, 0, 0)
    assert queue.sent == [(INGEST_TASK, [tenant, submission.job_id, ["a", "b", "c", "d"]]),
                          (INGEST_TASK, [tenant, submission.job_id, ["e"]])]
    stored = catalog.get(tenant, "c")
    assert (stored.status, stored.meta["title"]) == ("pending", "red c")
    assert catalog.job(tenant, submission.job_id)["status"] != "completed"


def test_an_unchanged_product_is_answered_unchanged_and_not_queued_again(setup):
    catalog, queue, tenant = setup
    catalog.submit(tenant, products("a", "b"))
    queue.sent.clear()
    again = catalog.submit(tenant, products("a") + products("b", colour="blue"), skip_unchanged=True)
    assert [(p.id, p.status) for p in again.products] == [("a", "unchanged"), ("b", "pending")]
    assert queue.sent == [(INGEST_TASK, [tenant, again.job_id, ["b"]])]
    assert catalog.get(tenant, "b").meta["title"] == "blue b"


def test_products_over_the_plan_are_rejected_one_by_one_and_a_batch_of_only_those_is_refused(setup):
    catalog, queue, tenant = setup
    submission = catalog.submit(tenant, products(*"abcdefgh"))
    assert [p.status for p in submission.products] == ["pending"] * 6 + ["rejected"] * 2
    assert submission.products[-1].error["code"] == "quota_exceeded"
    with pytest.raises(QuotaExceeded):
        catalog.submit(tenant, products("x", "y"))
    assert catalog.submit(tenant, products("a")).accepted == 1, "a stored product may always be updated"
