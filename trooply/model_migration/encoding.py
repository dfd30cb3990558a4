"""What ingest encodes with while two models coexist: the active one and the one a migration keeps current."""

from collections.abc import Callable

from sqlalchemy.orm import Session

from trooply.catalog.ingest import ModelTarget
from trooply.errors import TrooplyError
from trooply.model_migration.service import ModelMigrationService
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSpec
from trooply.vision.encoder import ClipEncoder


class MigrationModels:
    """Ingest's view of the model state (trooply.catalog.ingest.IngestModels)."""

    def __init__(self, service: ModelMigrationService, indexes: Callable[[], LiveSpaces],
                 encoder_for: Callable[[ModelSpec], ClipEncoder]) -> None:
        self._service = service
        self._indexes = indexes
        self._encoder_for = encoder_for  # the second model loads on the first product that needs it

    def targets(self) -> list[ModelTarget]:
        return [self._target(spec) for spec in self._service.state.current().written]

    def _target(self, spec: ModelSpec) -> ModelTarget:
        return ModelTarget(spec.space, lambda: self._encoder_for(spec), lambda: self._indexes().for_writes(spec.space))

    def second_failed(self, tenant_id: str, errors: dict[str, TrooplyError]) -> None:
        self._service.record_failures(tenant_id, {pid: (e.code, e.message) for pid, e in errors.items()})

    def clear_second_failures(self, session: Session, tenant_id: str, product_ids: list[str]) -> bool:
        return self._service.clear_failures(session, tenant_id, product_ids)

    def second_failures_cleared(self) -> None:
        self._service.cut_over_when_ready()
