"""Changing the CLIP model without downtime: start a migration, follow it, cut over, roll back, clean up.

While a migration runs, searches use the active model and every new or updated product is encoded by both;
each tenant's existing products are re-encoded in the background (trooply.model_migration.task). When every
tenant is done the target becomes active (at once, or on a manual cutover); the replaced model's vectors stay
current until cleanup, so a rollback is one call.
"""

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import Conflict, InvalidRequest
from trooply.model_migration.models import AUTO, DONE, PENDING, RUNNING, STATE_ID, ModelStateRow, TenantMigration
from trooply.model_migration.repository import ModelStateRepository, TenantMigrationRepository
from trooply.model_migration.schemas import MigrationOut, ModelOut, ModelsOut
from trooply.model_migration.task import TenantReencoder
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSnapshot, ModelSpec, ModelStateCache
from trooply.tasks.names import DROP_SPACE_TASK, REENCODE_TASK
from trooply.tasks.queue import Dispatcher
from trooply.tasks.send_once import SendOnce
from trooply.vectors import VectorSpace
from trooply.vision.sources import ModelLoadError, resolve

log = logging.getLogger(__name__)


def model_spec(model: str, pretrained: str) -> ModelSpec:
    """The model and its vector space, known from its config without loading it (ModelLoadError if unknown)."""
    source = resolve(model, pretrained)
    return ModelSpec(model, pretrained, source.space)


class ModelMigrationService:
    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher | None) -> None:
        self.db = db
        self.settings = settings
        # None in the CLI beside an embedded server: that server's sweep picks the work up.
        self._sends = SendOnce(dispatcher)
        self.state = ModelStateCache(self.read, settings.migration.state_cache_seconds)
        # Tasks start after every process has seen the new state: a product ingested meanwhile is encoded by both.
        self._settle_s = settings.migration.state_cache_seconds + 1.0

    def ensure_state(self) -> ModelSnapshot:
        """At start: the first start records the configured model; afterwards the database wins, else a
        restart with the old environment would undo a cutover."""
        configured = (self.settings.clip.model, self.settings.clip.pretrained)
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            if repo.get() is None:
                repo.add(ModelStateRow(id=STATE_ID, active=model_spec(*configured).stored(), cutover=AUTO))
        state = self.read()
        if (state.active.model, state.active.pretrained) != configured:
            log.warning("TROOPLY_CLIP_MODEL=%s TROOPLY_CLIP_PRETRAINED=%s is ignored: the active model is %s (%s), "
                        "as the database records; change it with `trooply models migrate`", *configured,
                        state.active.model, state.active.pretrained)
        self.state.forget()
        return state

    def read(self) -> ModelSnapshot:
        with self.db.session() as session:
            row = ModelStateRepository(session).get()
            if row is None:  # before ensure_state (a tool that never starts the service): the configuration
                return ModelSnapshot(model_spec(self.settings.clip.model, self.settings.clip.pretrained))
            return _snapshot(row)

    def status(self) -> ModelsOut:
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row = repo.get()
            state = _snapshot(row) if row is not None else self.read()
            migrating = None
            if state.target is not None:
                migrating = _progress(state, repo.tenants(), repo.failures_per_tenant())
        return ModelsOut(active=_out(state.active), migrating=migrating,
                         previous=_out(state.previous) if state.previous is not None else None)

    def migrate(self, model: str, pretrained: str) -> ModelsOut:
        try:
            target = model_spec(model, pretrained)
        except ModelLoadError as error:  # the request names a model this service cannot load: the caller's error
            raise InvalidRequest(error.message, code=error.code) from error
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row = self._locked(repo)
            state = _snapshot(row)
            if state.target is not None:
                raise Conflict(f"a migration to {state.target.model} is in progress", code="migration_in_progress")
            if state.previous is not None:
                raise Conflict(f"the vectors of the previous model {state.previous.model} are still kept: "
                               "POST /admin/v1/models/cleanup (or rollback) first", code="cleanup_required")
            if target.space == state.active.space:
                raise Conflict(f"{model} is already the active model", code="already_active")
            if any(spec["space"] == target.space.name for spec in row.retired):
                # Its old vectors, no longer kept current, would otherwise be kept and served after the cutover.
                raise Conflict(f"the vectors {model} left behind (cleanup or abort) are still being dropped: try again "
                               "in a few seconds", code="drop_in_progress")
            row.target, row.cutover, row.started_at = target.stored(), self.settings.migration.cutover, utcnow()
            tenant_ids = repo.live_tenant_ids()
            repo.begin_tenants(tenant_ids)
        self.state.forget()
        log.info("model migration to %s (%s) started for %d tenants", target.model, target.space.name,
                 len(tenant_ids))
        for tenant_id in tenant_ids:
            self._send_reencode(tenant_id, target, self._settle_s)
        if not tenant_ids:
            self.cut_over_when_ready()
        return self.status()

    def reencode(self, reencoder: TenantReencoder, tenant_id: str, target_space: str) -> None:
        """The task body: one tenant's re-encode; with `auto` cutover, the last tenant done switches the model."""
        try:
            finished = reencoder.run(tenant_id, target_space)
        finally:
            self._sends.ended(tenant_id)
        if finished:
            self.cut_over_when_ready()
        self._requeue_if_reopened(tenant_id)

    def _requeue_if_reopened(self, tenant_id: str) -> None:
        """Ingest's second encode failed for one of its products while the run was ending: once more."""
        state = self.read()
        with self.db.session() as session:
            progress = TenantMigrationRepository(session, tenant_id).get()
            reopened = progress is not None and progress.status == PENDING
        if reopened and state.target is not None:
            self._send_reencode(tenant_id, state.target, 0.0)

    def cut_over_when_ready(self) -> bool:
        """The automatic cutover: once every tenant, those created since the migration began included, is
        re-encoded and no product still lacks the target's vector (a manual `cutover` may go past failures)."""
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row = self._locked(repo)
            if row.target is None:
                return False
            target = ModelSpec.of(row.target)
            new_tenants = repo.add_new_tenants()
            ready = (row.cutover == AUTO and not new_tenants and _all_done(repo.tenants())
                     and not repo.failures_per_tenant())
            if ready:
                self._switch(row, repo)
        for tenant_id in new_tenants:
            self._send_reencode(tenant_id, target, 0.0)
        if ready:
            self.state.forget()
        return ready

    def cutover(self) -> ModelsOut:
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row, _target = self._migrating(repo)
            tenants = repo.tenants()
            if not _all_done(tenants):
                waiting = [t.tenant_id for t in tenants if t.status != DONE]
                raise Conflict(f"{len(waiting)} tenants are still being re-encoded", code="not_ready",
                               details={"tenants_waiting": len(waiting)})
            self._switch(row, repo)
        self.state.forget()
        return self.status()

    def abort(self) -> ModelsOut:
        """Stops a migration before its cutover: searches never left the active model, ingest stops encoding with
        the target within seconds, and the target's vectors are dropped once every process has stopped writing them."""
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row, target = self._migrating(repo)
            # Waits for a page being written (its progress row is locked); pages after it write nothing.
            repo.clear_tenants()
            row.target, row.retired = None, [*row.retired, target.stored()]
        self.state.forget()
        log.warning("model migration to %s aborted", target.model)
        self._send_drop(target, self._settle_s)
        return self.status()

    def retry_failures(self) -> ModelsOut:
        """Tries every product under `failed` again now (images fixed at their source): each tenant with failures
        runs once more, and with the automatic cutover the last one to succeed switches the model."""
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            _row, target = self._migrating(repo)  # locked: no cutover or abort in between
            tenant_ids = sorted(repo.failures_per_tenant())
            repo.reopen_tenants(tenant_ids)
        for tenant_id in tenant_ids:
            self._send_reencode(tenant_id, target, 0.0)
        return self.status()

    def rollback(self) -> ModelsOut:
        with self.db.session() as session:
            row = self._locked(ModelStateRepository(session))
            if row.previous is None:
                raise Conflict("there is no previous model to go back to (none yet, or it was cleaned up)",
                               code="no_previous_model")
            row.active, row.previous = row.previous, row.active
        self.state.forget()
        log.warning("model rolled back to %s", row.active["model"])
        return self.status()

    def cleanup(self) -> ModelsOut:
        """Forgets the previous model now; its vectors are dropped once every process has stopped writing them."""
        with self.db.session() as session:
            row = self._locked(ModelStateRepository(session))
            if row.target is not None:
                raise Conflict("a migration is in progress: cut over first", code="migration_in_progress")
            if row.previous is None:
                raise Conflict("there is no previous model to clean up", code="no_previous_model")
            previous = ModelSpec.of(row.previous)
            row.previous, row.retired = None, [*row.retired, previous.stored()]
        self.state.forget()
        self._send_drop(previous, self._settle_s)
        return self.status()

    def drop_space(self, indexes: LiveSpaces, space_name: str, dim: int) -> None:
        """The cleanup task: every tenant's vectors of a model no longer kept."""
        try:
            self._drop_space(indexes, VectorSpace(space_name, dim))
        finally:
            self._sends.ended(f"drop:{space_name}")

    def _drop_space(self, indexes: LiveSpaces, space: VectorSpace) -> None:
        space_name = space.name
        if space not in {spec.space for spec in self.read().written}:  # else in use again: nothing to drop
            indexes.retire(space)
            log.info("dropped the vectors of %s", space_name)
        with self.db.session() as session:
            row = self._locked(ModelStateRepository(session))
            row.retired = [spec for spec in row.retired if spec["space"] != space_name]

    def record_failures(self, tenant_id: str, errors: dict[str, tuple[str, str]]) -> None:
        """Ingest's encode with the target model failed for these products (id: (code, message)): the tenant's
        task tries them again, so the tenant is not done until it has."""
        state = self.state.current()
        if state.target is None or not errors:
            return
        with self.db.session() as session:
            repo = TenantMigrationRepository(session, tenant_id)
            progress = repo.lock()  # first, as the re-encoder and the abort take it
            if progress is None:  # a tenant created during the migration: from its first product
                repo.add(TenantMigration(status=PENDING, done=0, total=0))
            elif progress.status in (RUNNING, DONE):  # a run ending now must not mark it done
                progress.status = PENDING
            for product_id, (code, message) in errors.items():
                repo.record_failure(product_id, code, message)
        self._send_reencode(tenant_id, state.target, 0.0)

    @staticmethod
    def clear_failures(session: Session, tenant_id: str, product_ids: list[str]) -> bool:
        """Ingest stored these products with the target model too (a new image sent), in its transaction that
        holds their rows: failures recorded for them by earlier stores are void. True when one was cleared
        (then `cut_over_when_ready`, after that transaction)."""
        repo = TenantMigrationRepository(session, tenant_id)
        failed = repo.failed_among(product_ids)  # usually none: then no lock is taken
        if not failed:
            return False
        progress = repo.lock()  # before the failure rows, as the re-encoder and the abort take them
        cleared = repo.clear_failures(failed)
        if progress is not None and progress.status == DONE:
            progress.done = min(progress.total, progress.done + cleared)
        return cleared > 0

    def resume_unfinished(self) -> int:
        """Work accepted but not finished: at start (a killed process), and periodically (embedded, where
        `trooply models …` run from another process could not queue its tasks here; on the Celery workers, for
        work whose messages were lost). Queues each unfinished tenant (embedded: unless already queued here),
        each tenant created since the migration began, and each cleaned-up model whose vectors remain."""
        with self.db.session() as session:
            repo = ModelStateRepository(session)
            row = repo.get()
            if row is None:
                return 0
            state, retired = _snapshot(row), [ModelSpec.of(spec) for spec in row.retired]
            tenant_ids = repo.unfinished_tenants() if state.target is not None else []
        sent = [t for t in tenant_ids if state.target is not None and self._send_reencode(t, state.target, 0.0)]
        for spec in retired:
            self._send_drop(spec, 0.0)
        if state.target is not None:
            # Tenants created since the migration began, and a crash between the last tenant and the cutover.
            self.cut_over_when_ready()
        return len(sent)

    def _send_reencode(self, tenant_id: str, target: ModelSpec, delay: float) -> bool:
        return self._sends.send(tenant_id, REENCODE_TASK, [tenant_id, target.space.name], delay)

    def _send_drop(self, retired: ModelSpec, delay: float) -> None:
        self._sends.send(f"drop:{retired.space.name}", DROP_SPACE_TASK, [retired.space.name, retired.space.size],
                         delay)

    @staticmethod
    def _locked(repo: ModelStateRepository) -> ModelStateRow:
        row = repo.lock()
        if row is None:
            raise Conflict("the model state is not initialised: start the service once", code="not_ready")
        return row

    @classmethod
    def _migrating(cls, repo: ModelStateRepository) -> tuple[ModelStateRow, ModelSpec]:
        """The state row, locked, and the migration's target (409 no_migration when none is in progress)."""
        row = cls._locked(repo)
        if row.target is None:
            raise Conflict("no model migration is in progress", code="no_migration")
        return row, ModelSpec.of(row.target)

    @staticmethod
    def _switch(row: ModelStateRow, repo: ModelStateRepository) -> None:
        assert row.target is not None
        log.warning("model cutover: %s -> %s", row.active["model"], row.target["model"])
        row.previous, row.active, row.target = row.active, row.target, None
        repo.clear_tenants()



def _snapshot(row: ModelStateRow) -> ModelSnapshot:
    return ModelSnapshot(ModelSpec.of(row.active), ModelSpec.of(row.target) if row.target else None,
                         ModelSpec.of(row.previous) if row.previous else None, row.cutover)


def _all_done(tenants: Sequence[TenantMigration]) -> bool:
    return all(t.status == DONE for t in tenants)


def _out(spec: ModelSpec) -> ModelOut:
    return ModelOut(model=spec.model, pretrained=spec.pretrained, space=spec.space.name, dim=spec.space.size)


def _progress(state: ModelSnapshot, tenants: Sequence[TenantMigration], failures: dict[str, int]) -> MigrationOut:
    assert state.target is not None
    failed = sum(failures.values())
    return MigrationOut(**_out(state.target).model_dump(), done=sum(t.done for t in tenants),
                        total=sum(t.total for t in tenants), failed=failed,
                        tenants_done=sum(t.status == DONE for t in tenants), tenants_total=len(tenants),
                        ready=_all_done(tenants), cutover=state.cutover)
