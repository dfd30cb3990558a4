"""The share of words a search ranks with (search/reranking.py:keyword_weight), from the query and its profile."""

import numpy as np
import pytest

from trooply.index.words import lexicon
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles
from trooply.search.prepared_query import PreparedQuery, QueryLook
from trooply.search.reranking import NO_SEARCHABLE_WORDS, keyword_weight


@pytest.fixture(scope="module")
def profile():
    return next(p for p in load_profiles(DEFAULT_PROFILES_DIR).values() if p.keyword_weight > 0)


def query(text: str | None, **fields) -> PreparedQuery:
    words = lexicon("english").query(text) if text is not None else None
    return PreparedQuery("text", np.ones(4, np.float32), QueryLook(), [], words=words, **fields)


def test_a_mode_without_words_has_no_share_and_no_reason(profile):
    assert keyword_weight(query(None), profile) == (None, None)


def test_only_stop_words_rank_by_pictures_alone_and_say_why(profile):
    assert keyword_weight(query("the of and"), profile) == (0.0, NO_SEARCHABLE_WORDS)


def test_the_requests_share_wins_over_the_profiles(profile):
    assert keyword_weight(query("red leather bag", keyword_weight=0.9), profile) == (0.9, None)


def test_the_profiles_share_is_scaled_by_how_much_of_the_query_is_text(profile):
    assert keyword_weight(query("red leather bag"), profile) == (profile.keyword_weight, None)
    assert keyword_weight(query("red leather bag", text_share=0.5), profile) == (
        round(profile.keyword_weight * 0.5, 4), None)
