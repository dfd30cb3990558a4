"""A small, deterministic reader of shoppers' queries: price and stock phrases become filters, colour words
are noted for the colour signal, a family word picks the scoring profile, and what remains is what CLIP
encodes ("red bag under 12 dollars" → "red bag", price <= 12, colour red, accessories).

A number is read as a price only after a comparator ("under", "less than", "between … and …") or beside a
currency ("$20-$40", "20 to 40 dollars"), and never when a unit follows it: "iphone 15", "size 42 shoes",
"3 pack socks" and "tv over 40 inches" keep their numbers.
"""

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from trooply.ranking.profiles import ScoringProfile
from trooply.search.amounts import Amount, amount_at
from trooply.vision.colour_names import colour_vocabulary, colour_words_in

# Numbers in digits (not glued to letters: "4kg" and "501s" are words), words, and single symbols.
_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?k?(?![^\W_])|[^\W_]+(?:['’-][^\W_]+)*|[<>]=?|\S", re.IGNORECASE)
_UPPER = ("under", "below", "beneath", "less than", "cheaper than", "lower than", "less expensive than", "up to",
          "at most", "no more than", "not more than", "no higher than", "not over", "<", "<=")
_LOWER = ("over", "above", "more than", "greater than", "higher than", "at least", "upwards of", "starting at",
          "pricier than", "more expensive than", ">", ">=")
_AROUND = ("around", "about", "roughly", "approximately", "approx", "circa", "~")
# These read a number as money only beside a currency: "about 50 dollars" but "a book about 50 states",
# "max 80 dollars" but "air max 90 sneakers".
_UPPER_WITH_CURRENCY = ("max", "maximum")
_LOWER_WITH_CURRENCY = ("from", "starting from", "min", "minimum")
AROUND_SPREAD = 0.2
_COMPARATORS = sorted(
    [(tuple(p.split()), "lte", False) for p in _UPPER] + [(tuple(p.split()), "gte", False) for p in _LOWER]
    + [(tuple(p.split()), "lte", True) for p in _UPPER_WITH_CURRENCY]
    + [(tuple(p.split()), "gte", True) for p in _LOWER_WITH_CURRENCY]
    + [(tuple(p.split()), "around", True) for p in _AROUND], key=lambda item: -len(item[0]))
_STOCK = sorted([("in", "stock"), ("in-stock",), ("instock",), ("available", "now"), ("available",)],
                key=lambda phrase: -len(phrase))
_NEGATIONS = frozenset({"not", "no", "never", "isn't", "aren't"})
_CHEAPER = sorted([("cheaper",), ("less", "expensive"), ("lower", "price"), ("lower", "priced"), ("for", "less"),
                   ("more", "affordable")], key=lambda phrase: -len(phrase))
_THIS = frozenset({"this", "that", "it", "these", "those", "this one", "the original"})
# A comparator after one of these bounds a size or an age, not a price ("size under 42").
_NOT_PRICE_BEFORE = frozenset({"size", "sizes", "sz", "eu", "uk", "us", "waist", "length", "inseam", "age", "ages",
                               "aged", "model", "version"})
# Words that may follow a price without a currency ("shoes under 50 in red"); any other word ("over 40
# inches", "under 50 nike") leaves the number alone.
_AFTER_PRICE = frozenset({"and", "or", "but", "in", "with", "for", "that", "which", "please", "only", "each", "total",
                          "at", "from", "by", "per", "price", "tops", "ish"})
_NOT_AFTER_PRICE = frozenset({"%", '"', "″", "'", "+", "x"})  # 50% off, a 40" screen
# Dropped with a constraint when they lead into it ("a bag for under 12", "shoes that are in stock").
_LEAD_IN = frozenset({"for", "that", "which", "are", "is", "at", "with", "a", "price", "priced", "costing", "cost",
                      "costs", "only", "just", "and", "but", "of"})
_EDGE = _LEAD_IN | {"or", "in", "something", "please"}
# A text of only these says nothing CLIP could use ("like this, but cheaper").
_FILLER = frozenset({"like", "this", "that", "these", "those", "one", "ones", "similar", "same", "but", "something",
                     "anything", "it", "a", "an", "the", "please", "show", "me", "find", "i", "want", "need", "looking",
                     "for", "just", "only", "item", "items", "product", "products", "and", "or", "with"})
_MODIFIER = frozenset({"for", "with", "without"})  # a family word after these is not the thing sought ("bag for shoes")


@dataclass(frozen=True)
class QueryReading:
    text: str  # what is left for CLIP; "" when the query held nothing else
    filters: dict[str, Any] = field(default_factory=dict)  # in the public filter syntax
    colours: list[str] = field(default_factory=list)
    profile: str | None = None  # the family a family word names
    cheaper: bool = False  # "cheaper" without an amount: relative to something (fusion's query image)


@dataclass(frozen=True)
class _Token:
    word: str
    start: int
    end: int


@dataclass(frozen=True)
class _Match:
    end: int
    price: dict[str, float] = field(default_factory=dict)
    in_stock: bool = False
    cheaper: bool = False


class QueryReader:
    def __init__(self, profiles: dict[str, ScoringProfile]) -> None:
        self._families = {tuple(word.split()): name for name, profile in profiles.items()
                          for word in (*profile.categories, *profile.query_words)}
        self._longest = max(len(words) for words in self._families)

    def read(self, query: str) -> QueryReading:
        tokens = [_Token(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(query)]
        words = [token.word for token in tokens]
        removed = [False] * len(tokens)
        price: dict[str, float] = {}
        in_stock = cheaper = False
        position = 0
        while position < len(words):
            found = self._constraint_at(words, position)
            if found is None:
                position += 1
                continue
            price |= found.price
            in_stock, cheaper = in_stock or found.in_stock, cheaper or found.cheaper
            start = position
            while start > 0 and words[start - 1] in _LEAD_IN and not removed[start - 1]:
                start -= 1
            removed[start:found.end] = [True] * (found.end - start)
            position = found.end
        kept = _trimmed(words, [index for index, gone in enumerate(removed) if not gone])
        said_nothing = all(words[i] in _FILLER or not words[i][0].isalnum() for i in kept)
        text = "" if said_nothing else _joined(query, tokens, kept)
        filters: dict[str, Any] = {}
        if price:
            filters["price"] = {op: int(v) if v.is_integer() else v for op, v in sorted(price.items())}
        if in_stock:
            filters["in_stock"] = True
        colours = colour_words_in(text)
        return QueryReading(text, filters, [phrase.label for phrase in colours.phrases] if colours else [],
                            self._family([words[i] for i in kept]), cheaper)

    def _constraint_at(self, words: list[str], position: int) -> _Match | None:
        if position > 0 and words[position - 1] in _NOT_PRICE_BEFORE:
            return None
        return (self._range_at(words, position) or self._bound_at(words, position) or _stock_at(words, position)
                or _cheaper_at(words, position))

    def _range_at(self, words: list[str], position: int) -> _Match | None:
        """between 20 and 40 · from $20 to $40 · 20 to 40 dollars · $20-$40"""
        led = words[position] in ("between", "from")
        low = amount_at(words, position + 1 if led else position)
        if low is None or low.end >= len(words) or words[low.end] not in ("and", "to", "-"):
            return None
        if words[low.end] == "and" and words[position] != "between":
            return None
        high = amount_at(words, low.end + 1)
        if high is None or high.value < low.value:
            return None
        if not (low.currency or high.currency or (led and self._ends_price(words, high.end))):
            return None
        return _Match(high.end, price={"gte": low.value, "lte": high.value})

    def _bound_at(self, words: list[str], position: int) -> _Match | None:
        """under $50 · less than fifty dollars · over 100 · about 40 euros"""
        for phrase, kind, needs_currency in _COMPARATORS:
            if tuple(words[position:position + len(phrase)]) != phrase:
                continue
            amount = amount_at(words, position + len(phrase))
            if amount is None or not _plausible(amount) or (needs_currency and not amount.currency):
                return None
            if not amount.currency and not self._ends_price(words, amount.end):
                return None
            if kind == "around":
                return _Match(amount.end, price={"gte": round(amount.value * (1 - AROUND_SPREAD), 2),
                                                 "lte": round(amount.value * (1 + AROUND_SPREAD), 2)})
            return _Match(amount.end, price={kind: amount.value})
        return None

    def _ends_price(self, words: list[str], end: int) -> bool:
        if end >= len(words):
            return True
        after = words[end]
        if after in _NOT_AFTER_PRICE:
            return False
        return (after in _AFTER_PRICE or not after[0].isalnum() or after in colour_vocabulary()
                or any(tuple(words[end:end + n]) in self._families for n in range(1, self._longest + 1)))

    def _family(self, words: list[str]) -> str | None:
        """The family of the thing sought: the last family word outside a "for …"/"with …" phrase."""
        found: list[tuple[bool, str]] = []
        modifier, position = False, 0
        while position < len(words):
            modifier = modifier or words[position] in _MODIFIER
            for size in range(self._longest, 0, -1):
                family = self._families.get(tuple(words[position:position + size]))
                if family is not None:
                    found.append((modifier, family))
                    position += size - 1
                    break
            position += 1
        heads = [family for modifier, family in found if not modifier] or [family for _, family in found]
        return heads[-1] if heads else None


def _plausible(amount: Amount) -> bool:
    return 0 <= amount.value < 1e12  # a run of digits is not a price the engine should compare


def _stock_at(words: list[str], position: int) -> _Match | None:
    if position > 0 and words[position - 1] in _NEGATIONS:
        return None
    for phrase in _STOCK:
        if tuple(words[position:position + len(phrase)]) == phrase:
            return _Match(position + len(phrase), in_stock=True)
    return None


def _cheaper_at(words: list[str], position: int) -> _Match | None:
    """like this, but cheaper · cheaper than this one · for less (an amount after it is a bound instead)"""
    for phrase in _CHEAPER:
        if tuple(words[position:position + len(phrase)]) != phrase:
            continue
        end = position + len(phrase)
        if end < len(words) and words[end] == "than":
            if amount_at(words, end + 1) is not None:
                return None
            end += 1
            for size in (2, 1):
                if " ".join(words[end:end + size]) in _THIS:
                    end += size
                    break
        return _Match(end, cheaper=True)
    return None


def _trimmed(words: list[str], kept: list[int]) -> list[int]:
    """Without the connectors and punctuation a removed constraint left dangling at either end."""
    start, end = 0, len(kept)
    while start < end and _dangling(words[kept[start]]):
        start += 1
    while end > start and _dangling(words[kept[end - 1]]):
        end -= 1
    return kept[start:end]


def _dangling(word: str) -> bool:
    return word in _EDGE or not word[0].isalnum()


def _joined(query: str, tokens: list[_Token], kept: list[int]) -> str:
    """The kept words as the shopper wrote them; one space where a constraint was cut out."""
    if not kept:
        return ""
    text = query[tokens[kept[0]].start:tokens[kept[0]].end]
    for before, index in pairwise(kept):
        text += query[tokens[before].end:tokens[index].start] if index == before + 1 else " "
        text += query[tokens[index].start:tokens[index].end]
    return text
