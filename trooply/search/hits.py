"""A page entry as the hit the API answers with: the product, its score and matched image, and with `explain`
why it ranked there."""

from trooply.catalog.gallery import matched_image
from trooply.index.words import lexicon
from trooply.ranking.engine import QuerySignals
from trooply.ranking.explain import explain
from trooply.search.page import PageEntry
from trooply.search.schemas import MatchBreakdown, MatchedImage, SearchHit

TEXT_MODES = ("text", "voice")


def search_hit(entry: PageEntry, query: QuerySignals, mode: str, explain_it: bool) -> SearchHit:
    candidate = entry.candidate
    matched = matched_image(candidate.hit.payload, candidate.hit.image_position)
    hit = SearchHit(id=candidate.hit.product_id, similarity_score=candidate.score,
                    metadata=candidate.hit.payload.get("metadata", {}), group=entry.group,
                    matched_image=MatchedImage(url=matched["url"], position=matched["position"]))
    if explain_it:
        # Which words matched, and where, only for the page shown: ranking needed their BM25 score alone.
        words = (lexicon(query.words.language).match(query.words, candidate.hit.payload)
                 if query.words is not None and "keywords" in candidate.weights else None)
        hit.match_breakdown = MatchBreakdown(signals=candidate.signals, weights=candidate.weights,
                                             gates=candidate.gates, matched_terms=list(words.terms) if words else None)
        hit.explanation = explain(candidate, query, visual=mode not in TEXT_MODES, words=words)
    return hit
