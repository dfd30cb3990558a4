"""SQL engine, session factory and the declarative base shared by the domain models."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Delete, Select, Update, create_engine, delete, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

_PACKAGE = Path(__file__).resolve().parent
# A wheel carries the top-level migrations/ inside the package (pyproject.toml); a source checkout has it beside it.
MIGRATIONS_DIR = _PACKAGE / "_migrations" if (_PACKAGE / "_migrations").is_dir() else _PACKAGE.parent / "migrations"


class Base(DeclarativeBase):
    pass


_Row = TypeVar("_Row", bound="Base")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while workers (threads or Celery processes) write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.engine.dispose()


class TenantScopedRepository:
    """The base of every repository over tenant-owned rows: built for one tenant, and every statement made by
    its helpers carries `tenant_id == self.tenant_id`, so a query cannot forget the tenant.
    Work across tenants (recovery sweeps, periodic refreshes) belongs on a `MaintenanceRepository`."""

    def __init__(self, session: Session, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _owned(self, model: type[Base]) -> ColumnElement[bool]:
        column = getattr(model, "tenant_id", None)
        if column is None:
            raise TypeError(f"{model.__name__} has no tenant_id: it does not belong in a tenant-scoped repository")
        return column == self.tenant_id

    def _select(self, model: type[Base], *columns: Any) -> Select:
        """The model's rows (or `columns` of them) of this tenant only."""
        return select(*(columns or (model,))).select_from(model).where(self._owned(model))

    def _update(self, model: type[Base]) -> Update:
        return update(model).where(self._owned(model))

    def _delete(self, model: type[Base]) -> Delete:
        return delete(model).where(self._owned(model))

    def _get(self, model: type[_Row], **key: Any) -> _Row | None:
        """This tenant's row with that key (`id=...`), or None: another tenant's reads as missing."""
        return self.session.scalars(self._select(model).filter_by(**key)).first()

    def _add(self, row: _Row) -> _Row:
        """Adds a row owned by this tenant: its tenant_id is set when empty and must match when given."""
        owner = getattr(row, "tenant_id", None)
        if owner is None:
            row.tenant_id = self.tenant_id  # type: ignore[attr-defined]
        elif owner != self.tenant_id:
            raise ValueError(f"a {type(row).__name__} of another tenant cannot be added here")
        self.session.add(row)
        return row


class MaintenanceRepository:
    """The base of repositories for the few queries not confined to one tenant: authentication, before the
    tenant is known, and background work across tenants. Each method is named for the job it serves (resume
    unfinished scans, refresh popularity), so an unscoped query is never reached for by accident."""

    def __init__(self, session: Session) -> None:
        self.session = session
