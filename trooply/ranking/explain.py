"""One plain sentence per result, built from its breakdown: the portal shows it verbatim."""

from trooply.index.words import WordsMatch
from trooply.ranking.engine import GATE_RELAXED, QuerySignals, RankedCandidate
from trooply.vision.colour import colour_match, stored_palette

_PLACES = {"title": "in the title", "brand": "in the brand", "category": "in the category",
           "attributes": "in its attributes", "description": "in the description",
           "identifier": "in its id or product code"}


def explain(candidate: RankedCandidate, query: QuerySignals, visual: bool, words: WordsMatch | None = None) -> str:
    """`words`: the query's words this product holds, with the keywords signal."""
    signals, weights = candidate.signals, candidate.weights
    clip = signals["clip"]
    strength = "Close" if clip >= 0.9 else "Good" if clip >= 0.75 else "Partial"
    reasons = [(float("inf"), f"{strength} {'visual match' if visual else 'match to the description'}")]
    family = candidate.hit.payload.get("family")
    phrases = {
        "colour": _shared_colour(candidate, query),
        "category": (signals.get("category") == 1.0, f"same category ({family})"),
        "aspect": (signals.get("aspect", 0) >= 0.9, "similar shape"),
        "popularity": (signals.get("popularity", 0) >= 0.65, "popular this week"),
    }
    for name, (holds, phrase) in phrases.items():
        if name in weights and holds:
            reasons.append((weights[name] * signals[name], phrase))
    if "keywords" in weights and words is not None and words.terms:
        phrase = ("exact match on its id or product code" if words.identifier
                  else f'matches "{" ".join(words.terms)}" {_PLACES[words.field or "title"]}')
        reasons.append((float("inf") if words.identifier else weights["keywords"] * signals["keywords"], phrase))
    if "rules" in weights and signals["rules"] != 0.5:
        promoted = signals["rules"] > 0.5
        reasons.append((weights["rules"], "promoted by the merchant" if promoted else "lowered by a merchant rule"))
    if GATE_RELAXED in candidate.gates:
        # Said second, after the match itself: the shopper should know why it is on the page.
        reasons.append((float("inf"), "a different kind of product than your query"))
    elif signals.get("category") == 0.0 and family:
        reasons.append((0.0, f"different category ({family})"))
    reasons.sort(key=lambda reason: reason[0], reverse=True)
    return "; ".join(phrase for _, phrase in reasons[:4]) + "."


def _shared_colour(candidate: RankedCandidate, query: QuerySignals) -> tuple[bool, str]:
    """The colour this product and the query have in common, as people name it ("same colour (navy)")."""
    palette = stored_palette(candidate.hit.payload.get("image") or {})
    if query.colour is None or palette is None or candidate.signals.get("colour", 0) < 0.5:
        return False, ""
    shared = colour_match(query.colour, palette).shared
    return shared is not None, f"same colour ({shared})"
