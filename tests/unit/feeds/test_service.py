"""The feed service's bookkeeping on SQLite: one sync per feed, a sync taken by one delivery at a time (a silent one
taken over), restart recovery, and which scheduled feeds are due."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.conftest import make_settings
from trooply.container import Container
from trooply.db import utcnow
from trooply.errors import TrooplyError
from trooply.feeds.download import FeedDownloader
from trooply.feeds.models import Feed
from trooply.feeds.repository import FeedRepository
from trooply.feeds.schemas import FeedIn
from trooply.feeds.service import FeedService

UNREACHED = "http://127.0.0.1:9/feed.xml"  # never fetched: these tests queue syncs and do not run them


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[Container, FeedService, list[str], str]]:
    settings = make_settings(tmp_path)
    container = Container(settings)
    container.prepare()
    sent: list[str] = []
    feeds = FeedService(container.db, container.catalog, FeedDownloader.from_settings(settings), settings,
                        lambda _tenant, sync_id, delay=0.0: sent.append(sync_id))
    feeds.defer_s = 7.0
    tenant = container.tenants.create_tenant("shop", "free").tenant_id
    yield container, feeds, sent, tenant
    feeds.close()
    container.stop()


def status(feeds: FeedService, tenant: str, feed_id: str) -> str:
    return feeds.get(tenant, feed_id).syncs[0].status


def test_one_sync_per_feed_and_one_run_per_sync(world) -> None:
    container, feeds, sent, tenant = world
    feed = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="manual"))
    [sync_id] = sent
    assert feeds.start_sync(tenant, feed.id).sync_id == sync_id and sent == [sync_id]  # the queued one answers
    fresh = utcnow() - timedelta(minutes=15)
    with container.db.session() as session:
        assert FeedRepository(session, tenant).take_sync(sync_id, fresh)  # the first delivery runs it
    with container.db.session() as session:
        assert not FeedRepository(session, tenant).take_sync(sync_id, fresh)  # a second one, meanwhile, does not
    feeds.run_sync(tenant, sync_id)  # a redelivery: nothing happens, nothing is fetched
    assert status(feeds, tenant, feed.id) == "running"
    assert feeds.resume_unfinished(stale_only=True) == 0  # Celery's sweep leaves a live run alone
    with container.db.session() as session:  # the run falls silent past a download's deadline: it is gone
        FeedRepository(session, tenant).update_sync(sync_id, heartbeat_at=utcnow() - timedelta(hours=1))
    assert feeds.resume_unfinished(stale_only=True) == 1 and sent[-1] == sync_id
    with container.db.session() as session:
        assert FeedRepository(session, tenant).take_sync(sync_id, fresh)  # and a delivery takes it over


def test_an_embedded_start_sends_every_unfinished_sync_again(world) -> None:
    container, feeds, sent, tenant = world
    feed = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="manual"))
    with container.db.session() as session:
        FeedRepository(session, tenant).take_sync(sent[0], utcnow())
    assert status(feeds, tenant, feed.id) == "running"
    assert feeds.resume_unfinished() == 1 and sent == [sent[0], sent[0]]
    assert status(feeds, tenant, feed.id) == "pending"


def test_only_scheduled_feeds_that_are_due_and_idle_get_a_sync(world) -> None:
    container, feeds, sent, tenant = world
    due = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="hourly"))
    later = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="daily"))
    manual = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="manual"))
    with container.db.session() as session:
        for feed_id, when in ((due.id, -60), (later.id, 3600), (manual.id, -60)):
            row = session.get(Feed, feed_id)
            row.active_sync_id, row.next_sync_at = None, utcnow() + timedelta(seconds=when)
    sent.clear()
    assert feeds.sync_due() == 1
    assert feeds.get(tenant, due.id).syncs[0].trigger == "schedule" and len(sent) == 1
    assert feeds.sync_due() == 0  # its sync is queued: not twice


def test_one_sync_per_account_across_worker_processes_and_no_import_meanwhile(world) -> None:
    container, feeds, sent, tenant = world
    first = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="manual"))
    second = feeds.create(tenant, FeedIn(url=UNREACHED, schedule="manual"))
    other_tenant = container.tenants.create_tenant("other", "free").tenant_id
    elsewhere = feeds.create(other_tenant, FeedIn(url=UNREACHED, schedule="manual"))
    first_sync, second_sync, other_sync = sent
    fresh = utcnow() - timedelta(minutes=15)
    with container.db.session() as session:  # a worker process runs the first feed's sync
        assert FeedRepository(session, tenant).take_sync(first_sync, fresh)
    with container.db.session() as session:
        assert not FeedRepository(session, tenant).take_sync(second_sync, fresh)  # the account's second waits
        assert FeedRepository(session, other_tenant).take_sync(other_sync, fresh)  # another account's runs
    feeds.run_sync(tenant, second_sync)  # another worker's delivery: deferred, sent again, nothing fetched
    assert sent[-1] == second_sync and len(sent) == 4
    waiting = feeds.get(tenant, second.id).syncs[0]
    assert waiting.status == "pending" and "another feed sync of the account" in (waiting.note or "")
    with pytest.raises(TrooplyError) as busy:  # an import in the API process is refused as a second import is
        feeds.check_not_syncing(tenant)
    assert (busy.value.status, busy.value.code, busy.value.details["retry_after"]) == (429, "too_many_requests", 7)
    with container.db.session() as session:  # the first run fell silent past a download's deadline: it is gone
        FeedRepository(session, tenant).update_sync(first_sync, heartbeat_at=utcnow() - timedelta(hours=1))
    feeds.check_not_syncing(tenant)
    with container.db.session() as session:
        assert FeedRepository(session, tenant).take_sync(second_sync, fresh)
    assert status(feeds, tenant, first.id) == "running" and status(feeds, other_tenant, elsewhere.id) == "running"
