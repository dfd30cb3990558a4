"""A change of a tenant's language: recorded at once, its words re-tokenised by a background task, which the
sweeps send again until the index has finished (a stop midway, or the CLI beside a server)."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import trooply.models  # noqa: F401  (every table, for Base.metadata)
from tests.support.queues import WorkerQueue
from trooply.admin.languages import LanguageService
from trooply.db import Database
from trooply.index.base import HybridQuery, IndexPoint
from trooply.index.edge import EdgeIndex
from trooply.index.words import lexicon
from trooply.spaces.live import LiveSpaces
from trooply.tasks.names import RETOKENISE_TASK
from trooply.tenancy.languages import TenantLanguages
from trooply.tenancy.service import TenantService
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'languages.db'}")
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def index(tmp_path: Path, db: Database) -> Iterator[EdgeIndex]:
    opened = EdgeIndex(tmp_path / "data", SPACE)
    opened.languages = TenantLanguages(db)
    yield opened
    opened.close()


def test_the_task_is_sent_until_the_words_are_in_the_language_then_no_more(db: Database, index: EdgeIndex) -> None:
    tenant_id = TenantService(db).create_tenant("laden", "free").tenant_id
    other = TenantService(db).create_tenant("shop", "free").tenant_id
    vector = np.eye(SPACE.size, dtype=np.float32)[0]
    index.upsert(tenant_id, [IndexPoint("k1", vector, {"metadata": {"title": "Jacke für Kinder"}})])
    workers = WorkerQueue()
    languages = index.languages
    assert isinstance(languages, TenantLanguages)
    service = LanguageService(db, languages, workers, LiveSpaces.serving(index))
    assert service.resume() == 0  # nothing due: every tenant's words are in English

    service.set_language(tenant_id, "german")
    assert languages(tenant_id) == "german" and languages(other) == "english"  # this process: at once
    assert service.resume() == 1  # not run yet (a stop, or a lost message): sent again
    assert workers.sent == [(RETOKENISE_TASK, [tenant_id])] * 2

    service.run(tenant_id)
    words = lexicon("german").query("kind")
    hits = index.hybrid_query(tenant_id, HybridQuery(vector, 5, words.vector, None, [])).words
    assert [hit.product_id for hit in hits] == ["k1"]
    assert service.resume() == 0
    service.set_language(tenant_id, "german")  # the same again: nothing to re-tokenise
    assert len(workers.sent) == 2
