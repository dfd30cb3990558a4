"""Re-ranking and paging: the profile a query is ranked under and its signals, then its candidates ranked,
thresholded, grouped and diversified (search/page.py); more are retrieved when grouping leaves the page short."""

from dataclasses import dataclass, replace

from trooply.catalog.gallery import matched_image
from trooply.index.base import IndexHit
from trooply.ranking.engine import MerchandisingRule, QuerySignals, Ranking, rank
from trooply.ranking.families import FamilyClassifier, FamilyGuess
from trooply.ranking.profiles import ScoringProfile
from trooply.ranking.rules import RuleService
from trooply.search.context import SearchContext
from trooply.search.page import PageEntry, diversified, grouped
from trooply.search.prepared_query import PreparedQuery
from trooply.search.retrieval import Retriever

NO_SEARCHABLE_WORDS = "no_searchable_words"


@dataclass(frozen=True)
class RankingSetup:
    """What re-ranking reads besides the hits: the scoring profiles, the family classifier that picks one per
    query, and each tenant's merchandising rules."""

    profiles: dict[str, ScoringProfile]
    classifier: FamilyClassifier
    rules: RuleService

    def family_of(self, context: SearchContext, query: PreparedQuery) -> FamilyGuess:
        # An explicit profile is the caller saying what the shopper is after: it is the query's family.
        if context.options.profile:
            return FamilyGuess(context.options.profile, 1.0, "request")
        return query.family or self.classifier.classify(query.vector)


class Reranker:
    def __init__(self, retriever: Retriever, max_candidates: int) -> None:
        self.retriever = retriever
        self.max_candidates = max_candidates

    def page(self, context: SearchContext, query: PreparedQuery, signals: QuerySignals, profile: ScoringProfile,
             rules: list[MerchandisingRule]) -> tuple[Ranking, list[PageEntry]]:
        """Candidates ranked, thresholded, grouped and diversified. Grouping can leave the page short: then
        more candidates are fetched, up to `search_max_candidates`."""
        options = context.options
        pool = max(options.limit, profile.candidate_pool) + (query.exclude is not None)
        most = max(pool, self.max_candidates)
        while True:
            hits, exhausted, pinned = self.retriever.candidates(context, query, signals, pool)
            hits = [_signals_of_matched_image(hit) for hit in hits]
            ranking = rank([h for h in hits if h.product_id != query.exclude], signals, profile, rules, pinned)
            page = grouped([c for c in ranking.ranked if c.score >= options.threshold], options.group_by,
                           options.group_size)
            if options.group_by is None or len(page) >= options.limit or exhausted or pool >= most:
                return ranking, diversified(page, options.diversity, options.limit)
            pool = min(most, pool * 4)


def keyword_weight(query: PreparedQuery, profile: ScoringProfile) -> tuple[float | None, str | None]:
    """The share of words this search uses (None: a mode without words), and why it uses none when it has some."""
    if query.words is None:
        return None, None
    if not query.words.vector:
        return 0.0, NO_SEARCHABLE_WORDS  # only stop words or punctuation: pictures only
    if query.keyword_weight is not None:
        return query.keyword_weight, None
    # The profile's share of words, as much as the query is words: a fusion search led by its image weighs them less.
    return round(profile.keyword_weight * query.text_share, 4), None


def _signals_of_matched_image(hit: IndexHit) -> IndexHit:
    """Ranking reads the colour and aspect of the image that matched, not always the main one's."""
    if hit.image_position == 0:
        return hit
    return replace(hit, payload={**hit.payload, "image": matched_image(hit.payload, hit.image_position)["image"]})
