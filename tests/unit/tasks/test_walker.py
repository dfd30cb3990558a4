"""The resumable walk over a tenant's products, on a real SQLite database: its progress row and failure rows are
tables of this test, so that what a page records, and what a run that stops or dies leaves, is read back from
SQL as the next run would."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from trooply.db import Database
from trooply.errors import TrooplyError
from trooply.tasks.walker import Resume, TenantWalk, TenantWalker


class Tables(DeclarativeBase):
    pass


class Progress(Tables):
    __tablename__ = "walk_progress"
    tenant_id: Mapped[str] = mapped_column(String, primary_key=True)
    status: Mapped[str] = mapped_column(String)
    cursor: Mapped[str | None] = mapped_column(String, nullable=True)
    done: Mapped[int] = mapped_column(default=0)


class Failure(Tables):
    __tablename__ = "walk_failures"
    product_id: Mapped[str] = mapped_column(String, primary_key=True)
    code: Mapped[str] = mapped_column(String)


@dataclass(frozen=True)
class Product:
    id: str


class Killed(BaseException):
    """The process dying mid-page."""


class Walk(TenantWalk[Product, dict[str, str]]):
    """A task over `products`: a product whose id is in `failing` fails with that code; the others are done."""

    what = "test walk"

    def __init__(self, products: list[str], failing: dict[str, str] | None = None) -> None:
        self.products = [Product(pid) for pid in sorted(products)]
        self.failing = failing or {}
        self.worked: list[list[str]] = []
        self.prepared = 0
        self.on_page: dict[int, Callable[[], None]] = {}  # what happens during the n-th page's work (from 1)

    def begin(self, session: Session) -> Resume | None:
        progress = session.get(Progress, "t")
        if progress is None or progress.status == "done":
            return None
        progress.status = "running"
        return Resume(progress.cursor)

    def before_pages(self) -> None:
        self.prepared += 1

    def page_after(self, session: Session, cursor: str | None, limit: int) -> Sequence[Product]:
        return [p for p in self.products if cursor is None or p.id > cursor][:limit]

    def work(self, items: Sequence[Product]) -> dict[str, str]:
        self.worked.append([p.id for p in items])
        if action := self.on_page.get(len(self.worked)):
            action()
        return {p.id: self.failing[p.id] for p in items if p.id in self.failing}

    def record(self, session: Session, cursor: str | None, items: Sequence[Product], worked: dict[str, str]) -> bool:
        session.add_all(Failure(product_id=pid, code=code) for pid, code in worked.items())
        session.flush()  # written before the cursor check, as a page's writes are: the walker rolls them back
        progress = session.get(Progress, "t")
        assert progress is not None
        if progress.cursor != cursor:
            return False
        progress.cursor, progress.done = items[-1].id, progress.done + len(items) - len(worked)
        return True

    def finish(self, session: Session) -> None:
        progress = session.get(Progress, "t")
        assert progress is not None
        progress.status = "done"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'walk.sqlite'}")
    Tables.metadata.create_all(database.engine)
    with database.session() as session:
        session.add(Progress(tenant_id="t", status="pending", cursor=None, done=0))
    yield database
    database.close()


def walker(db: Database, max_attempts: int = 3) -> TenantWalker:
    return TenantWalker(db, workers=2, thread_name="test-walk", max_attempts=max_attempts, retry_base_delay=0.0)


def progress(db: Database) -> tuple[str, str | None, int]:
    with db.session() as session:
        row = session.get(Progress, "t")
        assert row is not None
        return row.status, row.cursor, row.done


def failures(db: Database) -> dict[str, str]:
    with db.session() as session:
        return {f.product_id: f.code for f in session.query(Failure)}


PRODUCTS = ["p0", "p1", "p2", "p3", "p4"]


def test_a_walk_records_every_page_with_its_failures_then_is_done(db):
    walk = Walk(PRODUCTS, failing={"p3": "image_not_found"})
    assert walker(db).walk("t", walk, page_size=2) is True
    assert walk.worked == [["p0", "p1"], ["p2", "p3"], ["p4"]] and walk.prepared == 1
    assert progress(db) == ("done", "p4", 4) and failures(db) == {"p3": "image_not_found"}
    again = Walk(PRODUCTS)
    assert walker(db).walk("t", again, page_size=2) is False  # done: nothing is due
    assert again.worked == [] and again.prepared == 0


def test_a_run_killed_mid_page_resumes_at_the_first_page_it_had_not_recorded(db):
    def die() -> None:
        raise Killed()

    dying = Walk(PRODUCTS)
    dying.on_page[2] = die
    with pytest.raises(Killed):
        walker(db).walk("t", dying, page_size=2)
    assert progress(db) == ("running", "p1", 2)  # the first page only

    resumed = Walk(PRODUCTS)
    assert walker(db).walk("t", resumed, page_size=2) is True
    assert resumed.worked == [["p2", "p3"], ["p4"]] and progress(db) == ("done", "p4", 5)


def test_stop_drops_the_page_under_way_and_the_next_run_does_it_again(db):
    first = walker(db)
    walk = Walk(PRODUCTS, failing={"p2": "fetch_timeout"})
    walk.on_page[2] = first.stop
    assert first.walk("t", walk, page_size=2) is False
    assert walk.worked == [["p0", "p1"], ["p2", "p3"]]
    assert progress(db) == ("running", "p1", 2) and failures(db) == {}  # the cut page's failure is not recorded
    assert first.walk("t", Walk(PRODUCTS), page_size=2) is False  # a stopped walker walks no more

    resumed = Walk(PRODUCTS)
    assert walker(db).walk("t", resumed, page_size=2) is True
    assert resumed.worked == [["p2", "p3"], ["p4"]]


def test_a_run_whose_progress_moved_on_stops_and_its_page_writes_nothing(db):
    walk = Walk(PRODUCTS, failing={"p0": "image_not_found"})

    def another_run_records_the_page() -> None:
        with db.session() as session:
            row = session.get(Progress, "t")
            assert row is not None
            row.cursor = "p1"

    walk.on_page[1] = another_run_records_the_page
    assert walker(db).walk("t", walk, page_size=2) is False
    assert walk.worked == [["p0", "p1"]]
    assert failures(db) == {} and progress(db) == ("running", "p1", 0)  # rolled back with the failed check


def test_an_empty_tenant_is_done_at_once(db):
    walk = Walk([])
    assert walker(db).walk("t", walk, page_size=2) is True
    assert walk.worked == [] and progress(db) == ("done", None, 0)


def test_each_keeps_one_failure_to_its_own_key():
    def broken() -> str:
        raise KeyError("a bug")

    def missing() -> str:
        raise TrooplyError("gone", code="image_not_found")

    pool = walker(Database("sqlite://"))
    try:
        done, failed = pool.each({"a": lambda: "A", "b": missing, "c": broken})
    finally:
        pool.stop()
    assert done == {"a": "A"}
    assert {key: (error.code, error.message) for key, error in failed.items()} == {
        "b": ("image_not_found", "gone"), "c": ("internal_error", "unexpected error (KeyError)")}


def test_retrying_tries_transient_failures_again_up_to_the_attempts_and_others_once():
    calls: list[str] = []

    def flaky(code: str, transient: bool, fails: int) -> str:
        calls.append(code)
        if len(calls) <= fails:
            raise TrooplyError("no", code=code, transient=transient)
        return "ok"

    pool = walker(Database("sqlite://"), max_attempts=3)
    assert pool.retrying(lambda: flaky("fetch_timeout", True, 2)) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(TrooplyError):
        pool.retrying(lambda: flaky("fetch_timeout", True, 5))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(TrooplyError):
        pool.retrying(lambda: flaky("image_not_found", False, 5))
    assert len(calls) == 1
    calls.clear()
    pool.stop()  # a stopping walker tries no more
    with pytest.raises(TrooplyError):
        pool.retrying(lambda: flaky("fetch_timeout", True, 5))
    assert len(calls) == 1
