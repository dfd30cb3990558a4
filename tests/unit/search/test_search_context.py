"""A search request's options are checked when its context is made: before any image is fetched, any model
loads or runs, or the index opens."""

from pathlib import Path

import pytest

from tests.conftest import make_settings
from trooply.container import Container
from trooply.errors import InvalidRequest
from trooply.search.schemas import SearchOptions
from trooply.vision.query_image import QueryImage


@pytest.fixture
def container(tmp_path: Path):
    built = Container(make_settings(tmp_path))
    built.db.migrate()
    yield built
    built.stop()


@pytest.mark.parametrize(("call", "code"), [
    (lambda search: search.search_text("t", "red bag", SearchOptions(profile="nope")), "unknown_profile"),
    (lambda search: search.search_voice("t", b"RIFF", SearchOptions(filters={"price": {"gte": "x"}})),
     "invalid_filter"),
    (lambda search: search.search_image("t", QueryImage(url="http://127.0.0.1:9/a.png"),
                                        SearchOptions(group_by="metadata.nope")), "invalid_group_by"),
    (lambda search: search.search_similar("t", "p1", SearchOptions(profile="nope")), "unknown_profile"),
])
def test_bad_options_are_refused_before_any_model_runs_or_the_index_opens(container, tmp_path, call, code):
    with pytest.raises(InvalidRequest) as refused:
        call(container.search)
    assert refused.value.code == code
    described = container.runtime.describe()
    assert not described["clip"]["loaded"] and not described["whisper"]["loaded"]
    # Nothing holds the data directory: another process's index opens.
    other = Container(make_settings(tmp_path))
    try:
        assert other.index.count("t") == 0
    finally:
        other.stop()
