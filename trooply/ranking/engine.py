"""Re-ranking: signals per candidate, hard gates, the blended score, and the breakdown that explains it.

Every signal is in [0, 1]. A signal with nothing to say for this query (no colour in a text query,
aspect for text, no feedback yet, no rules) is inactive: its weight is shared by the active ones
rather than counted as a mismatch. Everything a candidate needs was computed at ingest and sits in
its payload, so ranking 30 candidates is arithmetic, not model work.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trooply.index.base import Condition, IndexHit
from trooply.index.filters import payload_matches
from trooply.index.words import QueryWords
from trooply.ranking.families import FamilyGuess
from trooply.ranking.profiles import SIGNALS, ScoringProfile
from trooply.vision.colour import ColourTarget, colour_match, prepare_palettes, stored_palette

NEUTRAL = 0.5
# A candidate this close to the query is the same item whatever its label says: never gated.
NEAR_DUPLICATE_COSINE = 0.95
# Outcomes of the category gate. inactive: the query's own type was too unsure to gate on; passed: same
# type, or a candidate of unsure type; near_duplicate: another type, kept as a near-copy of the query;
# relaxed: another type, kept because the gate would have dropped every candidate.
GATE_INACTIVE, GATE_PASSED = "category:inactive", "category:passed"
GATE_NEAR_DUPLICATE, GATE_DROPPED = "category:near_duplicate", "category:dropped"
GATE_RELAXED = "category:relaxed"
GATE_EXACT = "category:exact_identifier"  # the query is exactly this product's id or code: never gated


@dataclass(frozen=True)
class QuerySignals:
    """What the query brings besides its vector."""

    family: FamilyGuess
    colour: ColourTarget | None = None
    aspect_ratio: float | None = None
    words: QueryWords | None = None  # text, voice and fusion queries with words to match (None: pictures only)
    keyword_weight: float = 0.0  # the share of words in clip + keywords (0 with no words)

    @property
    def matches_words(self) -> bool:
        return self.words is not None and self.keyword_weight > 0


@dataclass(frozen=True)
class MerchandisingRule:
    conditions: tuple[Condition, ...]
    weight: float  # -1 (bury) .. +1 (boost)
    profile: str | None = None


@dataclass
class RankedCandidate:
    hit: IndexHit
    score: float
    signals: dict[str, float]
    weights: dict[str, float]
    gates: list[str] = field(default_factory=list)


@dataclass
class Ranking:
    ranked: list[RankedCandidate]
    gated: list[str]
    relaxed: bool = False  # every candidate was gated, so they are ranked anyway (marked category:relaxed)


def clip_signal(cosine: float) -> float:
    return min(1.0, max(0.0, (cosine + 1.0) / 2.0))


def aspect_similarity(query_ratio: float, product_ratio: float) -> float:
    return math.exp(-abs(math.log(query_ratio / product_ratio)))


def rank(hits: list[IndexHit], query: QuerySignals, profile: ScoringProfile,
         rules: list[MerchandisingRule], pinned: frozenset[str] = frozenset()) -> Ranking:
    """`pinned`: products ranked first whatever their score (an exact identifier match)."""
    rules = [r for r in rules if r.profile in (None, profile.name)]
    active = _active_signals(hits, query, rules)
    weights = {name: getattr(profile.weights, name) for name in SIGNALS if name in active}
    relevance = profile.weights.clip + profile.weights.keywords  # split between pictures and words
    weights["clip"] = relevance * (1.0 - query.keyword_weight) if query.matches_words else relevance
    if query.matches_words:
        weights["keywords"] = relevance * query.keyword_weight
    total = sum(weights.values()) or 1.0
    weights = {name: round(w / total, 4) for name, w in weights.items()}
    if "colour" in weights:
        prepare_palettes([p for hit in hits if (p := stored_palette(hit.payload.get("image") or {})) is not None])
    strength = _lexical_strength(hits, pinned)
    ranked, gated = [], []
    for hit in hits:
        gate = GATE_EXACT if hit.product_id in pinned else category_gate(query.family, hit, profile)
        if gate == GATE_DROPPED:
            gated.append(hit)
        else:
            ranked.append(_scored(hit, query, rules, weights, gate, strength))
    relaxed = not ranked and bool(gated) and profile.gates.relax_when_empty
    if relaxed:
        # A page of "a different kind of product" beats an empty one: the shopper can still see something.
        ranked, gated = [_scored(hit, query, rules, weights, GATE_RELAXED, strength) for hit in gated], []
    ranked.sort(key=lambda c: (c.hit.product_id in pinned, c.score), reverse=True)
    return Ranking(ranked, [hit.product_id for hit in gated], relaxed)


def _scored(hit: IndexHit, query: QuerySignals, rules: list[MerchandisingRule], weights: dict[str, float],
            gate: str, strength: Callable[[IndexHit], float]) -> RankedCandidate:
    # Clamped: a signal a hair outside [0, 1] (rounding, a stored value) must not tilt the blend or its explanation.
    raw = {name: strength(hit) if name == "keywords" else _signal(name, hit, query, rules) for name in weights}
    signals = {name: round(min(1.0, max(0.0, value)), 4) for name, value in raw.items()}
    score = sum(weights[name] * signals[name] for name in weights)
    return RankedCandidate(hit, round(score, 4), signals, weights, [gate])


def _lexical_strength(hits: list[IndexHit], pinned: frozenset[str]) -> Callable[[IndexHit], float]:
    """The keywords signal: a candidate's BM25 score relative to the best among the candidates (so a rare word, a
    model number, counts more than a common one, and title and brand words more than the description's), times the
    share of the query's words it holds (one that lacks the model number is not nearly the product asked for);
    1 for an exact identifier; 0 for a candidate the words leg did not return."""
    best = max((hit.words_score for hit in hits if hit.words_score is not None), default=0.0)

    def strength(hit: IndexHit) -> float:
        if hit.product_id in pinned:
            return 1.0
        if hit.words_score is None or best <= 0:
            return 0.0
        return hit.words_score / best * (hit.words_coverage if hit.words_coverage is not None else 1.0)
    return strength


def _active_signals(hits: list[IndexHit], query: QuerySignals, rules: list[MerchandisingRule]) -> set[str]:
    active = {"clip", "category"}
    if query.colour is not None:
        active.add("colour")
    if query.aspect_ratio is not None:
        active.add("aspect")
    if any("popularity" in hit.payload for hit in hits):
        active.add("popularity")
    if rules:
        active.add("rules")
    if query.matches_words:
        active.add("keywords")
    return active


def _signal(name: str, hit: IndexHit, query: QuerySignals, rules: list[MerchandisingRule]) -> float:
    payload, image = hit.payload, hit.payload.get("image") or {}
    if name == "clip":
        return clip_signal(hit.score)
    if name == "colour":
        # A payload from before palettes has none: neutral until its colour is recomputed.
        palette = stored_palette(image)
        return colour_match(query.colour, palette).score if palette and query.colour is not None else NEUTRAL
    if name == "aspect":
        stored = image.get("aspect_ratio")
        return (aspect_similarity(query.aspect_ratio, stored)
                if stored and query.aspect_ratio is not None else NEUTRAL)
    if name == "category":
        family = payload.get("family")
        return NEUTRAL if family is None else float(family == query.family.family)
    if name == "popularity":
        return float(payload.get("popularity", NEUTRAL))
    if name == "rules":
        return _rules_signal(payload, rules)
    return 0.0  # keywords: matched in `_scored`


def _rules_signal(payload: dict[str, Any], rules: list[MerchandisingRule]) -> float:
    pull = sum(rule.weight for rule in rules if payload_matches(rule.conditions, payload))
    return min(1.0, max(0.0, NEUTRAL + pull / 2.0))


def category_gate(query: FamilyGuess, hit: IndexHit, profile: ScoringProfile) -> str:
    """What the hard category gate made of a candidate, as recorded in its breakdown's `gates`."""
    if query.confidence < profile.gates.query_confidence:
        return GATE_INACTIVE
    family, confidence = hit.payload.get("family"), hit.payload.get("family_confidence", 0.0)
    if family is None or family == query.family or confidence < profile.gates.candidate_confidence:
        return GATE_PASSED
    return GATE_NEAR_DUPLICATE if hit.score >= NEAR_DUPLICATE_COSINE else GATE_DROPPED
