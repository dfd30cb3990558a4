"""The model migration's SQL state and background re-encode, on real parts: SQLite (or PostgreSQL), qdrant-client
on disk for both models' indexes, the tiny random models (64-d active, 40-d target) and a real image server."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.postgres import postgres_server
from tests.support.queues import WorkerQueue
from trooply.catalog.models import INDEXED, PENDING, ProductRecord
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import Conflict, ServiceUnavailable, TrooplyError
from trooply.index.base import HybridQuery, IndexPoint
from trooply.index.server import QdrantServerIndex
from trooply.index.words import lexicon
from trooply.model_migration.repository import ModelStateRepository, TenantMigrationRepository
from trooply.model_migration.service import ModelMigrationService
from trooply.model_migration.task import TenantReencoder
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSpec
from trooply.tasks.names import DROP_SPACE_TASK, REENCODE_TASK
from trooply.tasks.queue import InProcessQueue
from trooply.tenancy.service import TenantService
from trooply.vectors import VectorSpace
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
TARGET = ("trooply-test-tiny-b", "random")
_ENCODERS: dict[tuple[str, str], ClipEncoder] = {}


def encoder_for(spec: ModelSpec) -> ClipEncoder:
    key = (spec.model, spec.pretrained)
    if key not in _ENCODERS:  # shared by the tests of this module: loading is the slow part
        _ENCODERS[key] = ClipEncoder.load(spec.model, spec.pretrained, device="cpu")
    return _ENCODERS[key]


@dataclass
class Migration:
    settings: Settings
    db: Database
    service: ModelMigrationService
    indexes: LiveSpaces
    queue: InProcessQueue
    images: ImageServer
    reencoder: TenantReencoder

    def add_products(self, tenant_id: str, count: int, prefix: str = "p") -> list[str]:
        """Indexed products with the active model's vectors, as ingest leaves them."""
        ids = [f"{prefix}{i:03d}" for i in range(count)]
        records = []
        for i, pid in enumerate(ids):
            path = f"/{tenant_id}/{pid}.png"
            self.images.add_image(path, two_halves_png(64, 64, (i * 7 % 255, 20, 0), (0, 0, 200)))
            records.append(ProductRecord(tenant_id=tenant_id, id=pid, image_url=self.images.url(path),
                                         meta={"category": "shoes", "title": pid}, status=INDEXED))
        with self.db.session() as session:
            session.add_all(records)
        active = self.service.read().active
        vectors = encoder_for(active).encode_texts(ids)
        self.indexes.index_of(active.space).upsert(tenant_id, [
            IndexPoint(pid, vector, {"category": "shoes", "image": {"aspect_ratio": 1.0}, "title": pid})
            for pid, vector in zip(ids, vectors, strict=True)])
        return ids

    def wait_until(self, condition, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while not (found := condition(self.service.status())):
            assert time.monotonic() < deadline, f"not reached: {self.service.status()}"
            time.sleep(0.05)
        return found


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite"])
def migration(request, tmp_path: Path) -> Iterator[Migration]:
    database = {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("postgres_url")}
    yield from _migration(make_settings(tmp_path, model_state_cache_seconds=0.1, model_migration_page_size=3,
                                        **database))


def _migration(settings: Settings) -> Iterator[Migration]:
    db = Database(settings.sql_url)
    db.migrate()
    queue = InProcessQueue(1)
    service = ModelMigrationService(db, settings, queue)
    service.ensure_state()
    # One local qdrant-client per model, as the service opens one per space; on disk, so that a reopened
    # index shows what the cleanup left.
    indexes = LiveSpaces(service.state.current, lambda space: QdrantServerIndex(
        QdrantClient(path=str(settings.data_dir / "qdrant" / space.name)), space))
    fetcher = ImageFetcher.from_settings(settings)
    reencoder = TenantReencoder(db, indexes, encoder_for, fetcher, settings, service.read)

    queue.register(REENCODE_TASK, lambda tenant_id, space: service.reencode(reencoder, tenant_id, space))
    queue.register(DROP_SPACE_TASK, lambda name, dim: service.drop_space(indexes, name, dim))
    queue.start()
    with ImageServer() as images:
        try:
            yield Migration(settings, db, service, indexes, queue, images, reencoder)
        finally:
            queue.stop()
            reencoder.close()
            fetcher.close()
            db.close()


def tenant(migration: Migration, name: str) -> str:
    return TenantService(migration.db).create_tenant(name, "free").tenant_id


@pytest.mark.parametrize("migration", ["sqlite", "postgresql"], indirect=True)
def test_migrate_re_encodes_every_tenant_then_cuts_over_rolls_back_and_cleans_up(migration):
    shop, other = tenant(migration, "shop"), tenant(migration, "other")
    shop_ids, other_ids = migration.add_products(shop, 7), migration.add_products(other, 2)
    old = migration.service.read().active

    started = migration.service.migrate(*TARGET)
    assert started.active.model == "trooply-test-tiny" and started.active.dim == 64
    assert started.migrating is not None and started.migrating.model == TARGET[0] and started.migrating.dim == 40
    assert (started.migrating.total, started.migrating.tenants_total, started.migrating.done) == (9, 2, 0)

    after = migration.wait_until(lambda s: s if s.migrating is None else None)
    assert after.active.model == TARGET[0] and after.active.dim == 40
    assert after.previous is not None and after.previous.space == old.space.name
    new_space = VectorSpace(after.active.space, after.active.dim)
    for tenant_id, ids in ((shop, shop_ids), (other, other_ids)):
        copied = {p.product_id: p for p in migration.indexes.index_of(new_space).retrieve(tenant_id, ids)}
        assert sorted(copied) == ids
        assert all(p.vector.shape == (40,) and p.payload["title"] == p.product_id for p in copied.values())
        assert copied[ids[0]].payload["image"] == {"aspect_ratio": 1.0}  # signals copied, not recomputed
    # Searches now read the new model's index; the old one stays current until cleanup.
    query = encoder_for(ModelSpec(*TARGET, new_space)).encode_text("shoes")
    assert {h.product_id for h in migration.indexes.query(shop, query, 10)} == set(shop_ids)
    migration.indexes.set_payload(shop, shop_ids[0], {"title": "renamed"})
    assert migration.indexes.index_of(old.space).retrieve(shop, shop_ids[:1])[0].payload["title"] == "renamed"

    rolled_back = migration.service.rollback()
    assert rolled_back.active.space == old.space.name and rolled_back.previous.space == new_space.name
    assert migration.indexes.index_of(old.space).count(shop) == len(shop_ids)
    assert migration.indexes.space == old.space
    again = migration.service.rollback()  # and forth: the two models swap
    assert again.active.space == new_space.name

    cleaned = migration.service.cleanup()
    assert cleaned.previous is None and cleaned.active.space == new_space.name
    migration.wait_until(lambda _s: _count_once_free(migration.indexes, old.space, shop) == 0)
    assert migration.indexes.index_of(new_space).count(shop) == len(shop_ids)
    with pytest.raises(Conflict) as refused:
        migration.service.rollback()
    assert refused.value.code == "no_previous_model"


def test_the_migrated_index_carries_the_words_without_another_fetch(migration):
    shop = tenant(migration, "shop")
    ids = migration.add_products(shop, 3)
    migration.indexes.set_payload(shop, ids[1], {"metadata": {"title": "Samsonite cabin case", "attributes": {
        "sku": "SC-55"}}})
    migration.service.migrate(*TARGET)
    after = migration.wait_until(lambda s: s if s.migrating is None else None)
    new_space = VectorSpace(after.active.space, after.active.dim)
    query = encoder_for(ModelSpec(*TARGET, new_space)).encode_text("case")
    words = lexicon().query("samsonite")
    hits = migration.indexes.index_of(new_space).hybrid_query(shop, HybridQuery(query, 10, words.vector, "sc-55"))
    assert [h.product_id for h in hits.words] == [ids[1]] and [h.product_id for h in hits.exact] == [ids[1]]


def test_manual_cutover_waits_for_every_tenant_and_for_the_call(tmp_path):
    settings = make_settings(tmp_path, model_cutover="manual", model_state_cache_seconds=0.1)
    for migration in _migration(settings):
        shop = tenant(migration, "shop")
        migration.add_products(shop, 3)
        migration.service.migrate(*TARGET)
        with pytest.raises(Conflict) as early:  # the tasks wait for every process to see the migration first
            migration.service.cutover()
        assert early.value.code == "not_ready" and early.value.details == {"tenants_waiting": 1}
        ready = migration.wait_until(lambda s: s if s.migrating.ready else None)
        assert ready.active.model == "trooply-test-tiny" and ready.migrating.cutover == "manual"
        assert (ready.migrating.done, ready.migrating.total, ready.migrating.failed) == (3, 3, 0)
        switched = migration.service.cutover()
        assert switched.active.model == TARGET[0] and switched.migrating is None
        with pytest.raises(Conflict) as twice:
            migration.service.cutover()
        assert twice.value.code == "no_migration"


def test_conflicting_calls_are_refused_with_a_code(migration):
    with pytest.raises(Conflict) as same:
        migration.service.migrate("trooply-test-tiny", "random")
    assert same.value.code == "already_active"
    with pytest.raises(TrooplyError) as unknown:
        migration.service.migrate("no-such-model", "random")
    assert unknown.value.code == "model_unavailable" and 400 <= unknown.value.status < 500
    for call in (migration.service.cleanup, migration.service.rollback):
        with pytest.raises(Conflict) as nothing:
            call()
        assert nothing.value.code == "no_previous_model"
    tenant(migration, "shop")
    migration.queue.stop()  # keeps the migration running for the calls below
    migration.service.migrate(*TARGET)
    for call in (lambda: migration.service.migrate(*TARGET), migration.service.cleanup):
        with pytest.raises(Conflict) as busy:
            call()
        assert busy.value.code == "migration_in_progress"


def migrating_shop(migration: Migration, count: int):
    """A shop of `count` products and a migration under way whose tasks the test runs itself (the queue is
    stopped); returns the shop, its product ids and the migration's target."""
    shop = tenant(migration, "shop")
    ids = migration.add_products(shop, count)
    migration.queue.stop()
    migration.service.migrate(*TARGET)
    return shop, ids, migration.service.read().target


def reencoded_with_one_missing_image(migration, count: int):
    """A shop of `count` products whose second image is gone, migrated and re-encoded once by the test itself."""
    shop, ids, target = migrating_shop(migration, count)
    migration.images.add_status(f"/{shop}/{ids[1]}.png", 404)
    assert migration.reencoder.run(shop, target.space.name) is True
    return shop, ids, target


def test_a_failed_image_is_counted_and_retried_on_the_next_run(migration):
    shop, ids, target = reencoded_with_one_missing_image(migration, 4)
    progress = migration.service.status().migrating
    assert (progress.done, progress.total, progress.failed, progress.ready) == (3, 4, 1, True)
    assert sorted(p.product_id for p in migration.indexes.index_of(target.space).retrieve(shop, ids)) == [
        ids[0], ids[2], ids[3]]

    migration.images.add_image(f"/{shop}/{ids[1]}.png", two_halves_png(64, 64, (1, 2, 3), (4, 5, 6)))
    migration.service.record_failures(shop, {ids[1]: ("upstream_error", "ingest's second encode failed")})
    assert migration.service.status().migrating.ready is False  # the tenant is not done until it is retried
    assert migration.reencoder.run(shop, target.space.name) is True
    progress = migration.service.status().migrating
    assert (progress.done, progress.total, progress.failed, progress.ready) == (4, 4, 0, True)


def test_a_second_run_resumes_after_the_recorded_cursor(migration):
    """What a killed worker leaves: some pages recorded. A new run starts after them and encodes no page twice."""
    shop, ids, target = migrating_shop(migration, 7)
    with migration.db.session() as session:
        repo = TenantMigrationRepository(session, shop)
        repo.set_status("running")
        assert repo.advance(None, ids[2], 3, 7)  # three products recorded before the crash
        assert not repo.advance(None, ids[5], 3, 7)  # a duplicate run that read the same cursor stops
    encoded_before = encoder_for(target).images_encoded
    assert migration.reencoder.run(shop, target.space.name) is True
    assert encoder_for(target).images_encoded - encoded_before == 4
    progress = migration.service.status().migrating
    assert (progress.done, progress.total, progress.ready) == (7, 7, True)


def test_the_first_start_records_the_model_and_later_ones_keep_it(tmp_path, caplog):
    db_path = tmp_path / "shared"
    first = make_settings(db_path)
    db = Database(first.sql_url)
    db.migrate()
    assert ModelMigrationService(db, first, None).ensure_state().active.model == "trooply-test-tiny"
    other = make_settings(db_path, clip_model=TARGET[0])
    state = ModelMigrationService(db, other, None).ensure_state()
    assert state.active.model == "trooply-test-tiny" and state.active.space.size == 64
    assert "is ignored: the active model is trooply-test-tiny" in caplog.text
    db.close()


def test_pages_skip_products_deleted_or_re_imaged_meanwhile(migration):
    shop, ids, target = migrating_shop(migration, 3)
    with migration.db.session() as session:
        session.get(ProductRecord, (shop, ids[0])).status = PENDING  # re-posted: ingest encodes it with both
    assert migration.reencoder.run(shop, target.space.name) is True
    stored = migration.indexes.index_of(target.space).retrieve(shop, ids)
    assert sorted(p.product_id for p in stored) == ids[1:]
    assert all(np.isclose(np.linalg.norm(p.vector), 1.0, atol=1e-3) for p in stored)


def test_work_queued_by_another_process_is_picked_up_once(migration):
    """`trooply models migrate` and `cleanup` run in a CLI process whose queue never runs: the serving process
    finds the unfinished tenants (and models to drop) in SQL, and queues each once however often it looks."""
    shop = tenant(migration, "shop")
    migration.add_products(shop, 2)
    cli = ModelMigrationService(migration.db, migration.settings, None)  # its tasks go nowhere
    cli.migrate(*TARGET)
    assert migration.service.resume_unfinished() == 1
    assert migration.service.resume_unfinished() == 0  # already queued here
    state = migration.wait_until(lambda s: s if s.migrating is None else None)
    assert state.active.model == TARGET[0]
    old = state.previous
    old_space = VectorSpace(old.space, old.dim)
    assert migration.indexes.index_of(old_space).count(shop) == 2
    cli.cleanup()
    migration.service.resume_unfinished()
    migration.wait_until(lambda _s: _count_once_free(migration.indexes, old_space, shop) == 0)


def _count_once_free(indexes: LiveSpaces, space: VectorSpace, tenant_id: str) -> int | None:
    """The space's points, or None while the drop task still holds its folder (qdrant-client's local mode, this
    test's stand-in for the server, lets one client at a time open a folder; seen once in a full run)."""
    try:
        return indexes.index_of(space).count(tenant_id)
    except BlockingIOError:
        return None
    except RuntimeError as error:  # the same lock, as qdrant-client reports it when it is already held
        if "already accessed by another instance" not in str(error):
            raise
        return None


def test_family_prompts_are_embedded_per_model(migration):
    from trooply.ranking.families import FamilyClassifier
    from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles

    active = migration.service.read().active
    target = ModelSpec(*TARGET, VectorSpace("trooply-test-tiny-b__random", 40))
    classifier = FamilyClassifier(load_profiles(DEFAULT_PROFILES_DIR), lambda: encoder_for(active))
    new_vector = encoder_for(target).encode_text("running shoes")
    # Each model's vectors are classified against prompts embedded by that model: the sizes differ (64 and 40),
    # so a prompt matrix of the other model would fail the product with a shape error.
    assert classifier.classify(encoder_for(active).encode_text("running shoes")).confidence > 0
    assert classifier.classify(new_vector, encoder_for(target)).confidence > 0
    # A vector of the other model (a query encoded just before a cutover) is classified in its own space.
    assert classifier.classify(new_vector) == classifier.classify(new_vector, encoder_for(target))


def test_the_cli_starts_and_reports_a_migration(tmp_path, monkeypatch, capsys):
    import json

    from trooply.cli import main

    for name, value in {"TROOPLY_DATA_DIR": str(tmp_path), "TROOPLY_CLIP_MODEL": "trooply-test-tiny",
                        "TROOPLY_CLIP_PRETRAINED": "random"}.items():
        monkeypatch.setenv(name, value)
    db = Database(make_settings(tmp_path).sql_url)
    db.migrate()
    TenantService(db).create_tenant("shop", "free")
    db.close()
    assert main(["models", "migrate", TARGET[0], "--pretrained", TARGET[1]]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["active"]["model"] == "trooply-test-tiny" and started["migrating"]["tenants_total"] == 1
    assert main(["models", "cutover"]) == 1  # nothing ran it yet: `trooply serve` picks it up
    assert "error [not_ready]" in capsys.readouterr().err
    assert main(["models", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["migrating"]["model"] == TARGET[0]


def test_with_workers_elsewhere_every_send_goes_out(migration):
    """A worker, not this process, runs the task: deduplicating here would drop a resend for good."""
    shop = tenant(migration, "shop")
    ids = migration.add_products(shop, 2)
    workers = WorkerQueue()
    api = ModelMigrationService(migration.db, migration.settings, workers)
    api.migrate(*TARGET)
    space = api.read().target.space.name
    api.record_failures(shop, {ids[0]: ("second_model_failed", "the second model failed")})
    assert api.resume_unfinished() == 1
    assert workers.sent == [(REENCODE_TASK, [shop, space])] * 3


def test_auto_cutover_waits_for_failures_and_a_manual_one_may_force_it(migration):
    shop, ids, target = reencoded_with_one_missing_image(migration, 3)
    assert migration.service.cut_over_when_ready() is False
    assert migration.service.status().migrating.failed == 1
    assert migration.service.cutover().active.model == TARGET[0]


def test_a_failure_recorded_while_the_tenant_runs_keeps_it_unfinished(migration):
    shop, ids, _target = migrating_shop(migration, 2)
    with migration.db.session() as session:
        TenantMigrationRepository(session, shop).set_status("running")
    migration.service.record_failures(shop, {ids[0]: ("second_model_failed", "the second model failed")})
    with migration.db.session() as session:
        assert TenantMigrationRepository(session, shop).get().status == "pending"


def test_a_tenant_created_during_the_migration_is_re_encoded_before_the_cutover(migration):
    shop, _ids, target = migrating_shop(migration, 2)
    late = tenant(migration, "late")
    late_ids = migration.add_products(late, 2, prefix="l")
    assert migration.reencoder.run(shop, target.space.name) is True
    assert migration.service.cut_over_when_ready() is False
    assert migration.service.status().migrating.tenants_total == 2
    assert migration.reencoder.run(late, target.space.name) is True
    assert migration.service.cut_over_when_ready() is True
    assert sorted(p.product_id for p in migration.indexes.index_of(target.space).retrieve(late, late_ids)) == late_ids


def retired_spaces(migration: Migration) -> list[str]:
    with migration.db.session() as session:
        return [spec["space"] for spec in ModelStateRepository(session).get().retired]


def test_abort_keeps_the_active_model_and_drops_what_was_re_encoded(tmp_path):
    settings = make_settings(tmp_path, model_cutover="manual", model_state_cache_seconds=0.1)
    for migration in _migration(settings):
        shop = tenant(migration, "shop")
        ids = migration.add_products(shop, 3)
        active = migration.service.read().active
        migration.service.migrate(*TARGET)
        target = migration.service.read().target
        migration.wait_until(lambda s: s.migrating.ready)
        assert migration.indexes.index_of(target.space).count(shop) == 3

        aborted = migration.service.abort()
        assert aborted.migrating is None and aborted.previous is None and aborted.active.space == active.space.name
        with pytest.raises(ServiceUnavailable) as late:  # an ingest batch that chose its models before the abort
            migration.indexes.for_writes(target.space)
        assert late.value.code == "model_retired"
        with pytest.raises(Conflict) as dropping:  # the drop first waits for every process to stop writing it
            migration.service.migrate(*TARGET)
        assert dropping.value.code == "drop_in_progress"
        migration.wait_until(lambda _s, m=migration: retired_spaces(m) == [])
        assert migration.indexes.index_of(target.space).count(shop) == 0
        query = encoder_for(active).encode_text("shoes")
        assert {h.product_id for h in migration.indexes.query(shop, query, 10)} == set(ids)

        migration.service.migrate(*TARGET)  # and again, from the first product
        migration.wait_until(lambda s: s.migrating.ready)
        assert migration.service.cutover().active.space == target.space.name
        assert migration.indexes.count(shop) == 3
        with pytest.raises(Conflict) as over:
            migration.service.abort()
        assert over.value.code == "no_migration"


def between_encode_and_write(migration: Migration, monkeypatch, action) -> None:
    """Runs `action` each time the task has encoded a page and before it writes it: what lands meanwhile."""
    encode = migration.reencoder._encode

    def encode_then_act(*args):
        page = encode(*args)
        action()
        return page

    monkeypatch.setattr(migration.reencoder, "_encode", encode_then_act)


def test_a_page_under_way_when_the_migration_is_aborted_writes_nothing(migration, monkeypatch):
    shop, _ids, target = migrating_shop(migration, 5)
    between_encode_and_write(migration, monkeypatch, migration.service.abort)
    assert migration.reencoder.run(shop, target.space.name) is False
    assert migration.indexes.index_of(target.space).count(shop) == 0  # else left behind once the drop has run
    assert migration.service.status().migrating is None


def test_retry_runs_the_tenants_with_failures_again_and_the_automatic_cutover_follows(migration):
    shop, ids, target = reencoded_with_one_missing_image(migration, 3)
    assert migration.service.cut_over_when_ready() is False  # held back by the missing image
    migration.images.add_image(f"/{shop}/{ids[1]}.png", two_halves_png(64, 64, (1, 2, 3), (4, 5, 6)))

    retried = migration.service.retry_failures()
    assert retried.migrating.ready is False and retried.migrating.failed == 1
    with migration.db.session() as session:  # so the sweep finds it again if that send is lost
        assert ModelStateRepository(session).unfinished_tenants() == [shop]
    migration.service.reencode(migration.reencoder, shop, target.space.name)  # the task body, run here
    state = migration.service.status()
    assert state.migrating is None and state.active.space == target.space.name
    assert sorted(p.product_id for p in migration.indexes.retrieve(shop, ids)) == ids


def test_a_failure_is_kept_while_its_product_is_being_ingested_again(migration):
    shop, ids, target = reencoded_with_one_missing_image(migration, 3)  # ids[1]'s image is gone: one failure
    with migration.db.session() as session:  # the merchant sent a new image: ingest has the product now
        session.get(ProductRecord, (shop, ids[1])).status = PENDING
    migration.service.retry_failures()
    assert migration.reencoder.run(shop, target.space.name) is True
    assert migration.service.status().migrating.failed == 1  # left to ingest's store, which clears or records it


def test_a_fetch_failure_is_not_recorded_when_the_image_was_replaced_meanwhile(migration, monkeypatch):
    shop, ids, target = migrating_shop(migration, 3)
    migration.images.add_status(f"/{shop}/{ids[1]}.png", 404)

    def replace_image():  # a new image arrived while the old one was fetched: the product is ingest's now
        with migration.db.session() as session:
            session.get(ProductRecord, (shop, ids[1])).image_url = migration.images.url("/replaced.png")

    between_encode_and_write(migration, monkeypatch, replace_image)
    assert migration.reencoder.run(shop, target.space.name) is True
    assert migration.service.status().migrating.failed == 0  # the old image's 404 says nothing of the new one
