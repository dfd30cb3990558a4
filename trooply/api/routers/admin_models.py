"""The admin API's model routes: which CLIP model is active, and changing it without downtime. Mounted beside
the tenant routes, under the same prefix and token (trooply/api/routers/admin.py)."""

from fastapi import APIRouter, Depends

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import ModelMigrationDep, require_admin_token
from trooply.model_migration.schemas import ModelIn, ModelsOut

router = APIRouter(prefix="/admin/v1/models", tags=["admin"], route_class=StrictJsonRoute,
                   dependencies=[Depends(require_admin_token)])


@router.get("", response_model=ModelsOut)
def models_status(models: ModelMigrationDep):
    """The active model, and a migration's progress: done, total and failed products, tenant by tenant."""
    return models.status()


@router.post("/migrate", status_code=202, response_model=ModelsOut)
def migrate(target: ModelIn, models: ModelMigrationDep):
    """Re-encodes every product into the new model in the background; searches keep the active one until the
    cutover. 409 migration_in_progress, cleanup_required, already_active, drop_in_progress; 422 model_unavailable."""
    return models.migrate(target.model, target.pretrained)


@router.post("/cutover", response_model=ModelsOut)
def cutover(models: ModelMigrationDep):
    """Makes the migrated model active (TROOPLY_MODEL_CUTOVER=manual). 409 no_migration, not_ready."""
    return models.cutover()


@router.post("/abort", response_model=ModelsOut)
def abort(models: ModelMigrationDep):
    """Stops a migration before its cutover and drops what it re-encoded; the active model never changed.
    409 no_migration."""
    return models.abort()


@router.post("/retry", response_model=ModelsOut)
def retry(models: ModelMigrationDep):
    """Tries every product under `failed` again now (after fixing their images); the automatic cutover follows
    when they succeed. 409 no_migration."""
    return models.retry_failures()


@router.post("/rollback", response_model=ModelsOut)
def rollback(models: ModelMigrationDep):
    """Back to the model the last cutover replaced, whose vectors were kept current. 409 no_previous_model."""
    return models.rollback()


@router.post("/cleanup", response_model=ModelsOut)
def cleanup(models: ModelMigrationDep):
    """Drops the previous model's vectors: no rollback after this. 409 migration_in_progress, no_previous_model."""
    return models.cleanup()
