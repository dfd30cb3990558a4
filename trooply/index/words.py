"""The lexical leg of the index: a product's words as a BM25 sparse vector, the same on both engines.

Tokens come from Qdrant Edge's BM25 model (lower-cased, ASCII-folded, English stop words dropped, Snowball
stemming), which keeps numbers and codes ("90", "b07xj8c8f5"). A code written with separators ("SKU-83421",
"crew-neck") gives its parts and its joined form ("sku", "83421", "sku83421"), on the product's side and on the
query's, so "sku-83421", "SKU 83421" and "sku83421" all find it. Every store keeps these vectors under
`WORDS_VECTOR` with the IDF modifier: IDF is applied at query time, over the corpus the query names (the tenant's
own points in the shared store). The vectors are a function of the stored payload, so the index derives them on
every write that carries the product's text (`document_words`) and no caller can forget them.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal, get_args

import qdrant_edge as qe

WORDS_VECTOR = "words"
IDENTIFIERS_KEY = "_ids"  # payload: the product's id and identifier attributes, lower-cased, for exact lookups
IDENTIFIER_ATTRIBUTES = ("sku", "gtin", "mpn", "ean")
DEFAULT_LANGUAGE = "english"
LANGUAGE_KEY = "_lang"  # payload: the language the point's words were tokenised in (absent: the default)
# The languages Qdrant Edge's BM25 has stop words and a stemmer for (a tenant's `language`); the same tokens on the
# server, since both engines' vectors come from this model.
Language = Literal["arabic", "azerbaijani", "basque", "bengali", "catalan", "chinese", "danish", "dutch", "english",
                   "finnish", "french", "german", "greek", "hebrew", "hinglish", "hungarian", "indonesian",
                   "italian", "japanese", "kazakh", "nepali", "norwegian", "portuguese", "romanian", "russian",
                   "slovene", "spanish", "swedish", "tajik", "turkish"]
LANGUAGES: tuple[str, ...] = get_args(Language)
MAX_IDENTIFIER = 256
# A query of several words is looked up whole as an identifier ("MX 500 BLK") when it is short and holds a digit,
# as product codes do; a phrase of words alone is left to BM25.
MAX_IDENTIFIER_WORDS = 4
_AVERAGE_TOKENS = 40  # BM25's length normalisation: a title, brand, category, attributes and a short description

# Which field an explanation names when a word is in several: the one where a match says most.
FIELD_WEIGHTS = {"identifier": 1.0, "title": 1.0, "brand": 1.0, "category": 0.8, "attributes": 0.8,
                 "description": 0.5}
# How often each field's text is repeated in the BM25 document: a title word outweighs a description word.
_REPEATS = {"identifier": 1, "title": 2, "brand": 2, "category": 1, "attributes": 1, "description": 1}
_COMPOUND = re.compile(r"[^\W_]+(?:[-_./:#+][^\W_]+)+")
_SEPARATOR = re.compile(r"[^\W_][-_./:#+][^\W_]")
_TYPED_WORD = re.compile(r"[^\s,;]+")
_EDGE_PUNCTUATION = "\"'“”‘’()[]{}<>!?.,:;"


@dataclass(frozen=True)
class Words:
    """A sparse vector: token ids and their weights (BM25 term frequencies for a document, 1 for a query)."""

    indices: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.indices)


@dataclass(frozen=True)
class QueryTerm:
    """One word of the query as the shopper typed it, and the tokens it stands for."""

    typed: str
    tokens: frozenset[int]


@dataclass(frozen=True)
class QueryWords:
    """What the lexical leg searches for: the BM25 query vector, the typed words it came from, and a one-word
    query as an identifier (an exact id, sku, gtin, mpn or ean puts that product first)."""

    vector: Words
    terms: tuple[QueryTerm, ...]
    identifier: str | None
    language: str = DEFAULT_LANGUAGE  # the tenant's: its products' words were tokenised in it


@dataclass(frozen=True)
class WordsMatch:
    """How a product's words answer a query, for its explanation: the typed words it holds (in query order) and the
    field most of them were found in (the best field of each word)."""

    terms: tuple[str, ...]
    field: str | None
    identifier: bool = False


class Lexicon:
    """Tokeniser and BM25 vectors for one language."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language
        self._bm25 = qe.Bm25(qe.Bm25Config(language=language, ascii_folding=True, avg_len=_AVERAGE_TOKENS))

    def tokens(self, text: str) -> frozenset[int]:
        """Cached: ranking asks again for the same catalogue texts query after query."""
        return _tokens(self.language, text)

    def document_vector(self, payload: dict[str, Any]) -> Words:
        """A product's BM25 vector: its fields' words, a title's and brand's counted twice."""
        text = " ".join(with_joined_codes(part) for field, part in product_fields(payload)
                        for _ in range(_REPEATS[field]))
        return _word_vector(self._bm25.embed_document(text)) if text else Words()

    def query_vector(self, text: str) -> Words:
        return _word_vector(self._bm25.embed_query(with_joined_codes(text)))

    def query(self, text: str) -> QueryWords:
        vector = self.query_vector(text)
        terms = []
        for match in _TYPED_WORD.finditer(text):
            typed = match.group().strip(_EDGE_PUNCTUATION)
            tokens = self.tokens(typed) if typed else frozenset()
            if tokens:
                terms.append(QueryTerm(typed, tokens))
        return QueryWords(vector, tuple(terms), _looked_up_whole(text), self.language)

    def match(self, query: QueryWords, payload: dict[str, Any]) -> WordsMatch:
        if query.identifier is not None and query.identifier in identifiers(payload):
            return WordsMatch(tuple(t.typed for t in query.terms), "identifier", identifier=True)
        fields = [(field, self.tokens(text)) for field, text in product_fields(payload)]
        found: list[tuple[str, str]] = []
        for term in query.terms:
            holding = [field for field, tokens in fields if term.tokens <= tokens]
            if holding:
                found.append((term.typed, max(holding, key=lambda field: FIELD_WEIGHTS[field])))
        if not found:
            return WordsMatch((), None)
        places = [field for _, field in found]
        return WordsMatch(tuple(typed for typed, _ in found), max(dict.fromkeys(places), key=places.count))



def with_joined_codes(text: str) -> str:
    """The text plus each code written with separators, joined: "SKU-83421" also gives "sku83421"."""
    if not _SEPARATOR.search(text):
        return text
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    joined = [re.sub(r"[-_./:#+]", "", code) for code in _COMPOUND.findall(folded)]
    return " ".join([text, *joined]) if joined else text


def product_fields(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The product's words by field, from its stored payload (id, metadata and its string attributes)."""
    metadata = payload.get("metadata") or {}
    fields: list[tuple[str, str]] = []
    if payload.get("product_id"):
        fields.append(("identifier", str(payload["product_id"])))
    for name in ("title", "brand", "category", "description"):
        value = metadata.get(name)
        if isinstance(value, str) and value.strip():
            fields.append((name, value))
    attributes = metadata.get("attributes") or {}
    if isinstance(attributes, dict):
        codes = [v for k, v in attributes.items() if k.lower() in IDENTIFIER_ATTRIBUTES and isinstance(v, str)]
        values = [v for k, v in attributes.items() if k.lower() not in IDENTIFIER_ATTRIBUTES and isinstance(v, str)]
        if codes:
            fields.append(("identifier", " ".join(codes)))
        if values:
            fields.append(("attributes", " ".join(values)))
    return fields


def identifiers(payload: dict[str, Any]) -> list[str]:
    """The product's id and identifier attributes, lower-cased, white space collapsed: what an exact query is
    compared with."""
    metadata = payload.get("metadata") or {}
    attributes = metadata.get("attributes") or {}
    found: Iterable[Any] = [payload.get("product_id"),
                            *(v for k, v in attributes.items() if k.lower() in IDENTIFIER_ATTRIBUTES)]
    return list(dict.fromkeys(_identifier(v) for v in found if isinstance(v, (str, int)) and str(v).strip()))


def _identifier(value: Any) -> str:
    return " ".join(str(value).split()).lower()


def _looked_up_whole(text: str) -> str | None:
    """The query as an identifier: one word, or a few holding a digit ("mx 500 blk"); None: not one."""
    identifier = _identifier(text)
    words = identifier.count(" ") + 1
    code_like = words == 1 or (words <= MAX_IDENTIFIER_WORDS and any(c.isdigit() for c in identifier))
    return identifier if 0 < len(identifier) <= MAX_IDENTIFIER and code_like else None


def has_text(payload: dict[str, Any]) -> bool:
    """Whether a payload write carries the product's text (so its words must follow)."""
    return "metadata" in payload


@cache
def lexicon(language: str = DEFAULT_LANGUAGE) -> Lexicon:
    return Lexicon(language)


@lru_cache(maxsize=65536)
def _tokens(language: str, text: str) -> frozenset[int]:
    return frozenset(lexicon(language).query_vector(text).indices)


def document_words(payload: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> Words:
    return lexicon(language).document_vector(payload)


def words_language(payload: dict[str, Any]) -> str:
    """The language a stored point's words are in (points written before languages: the default)."""
    return str(payload.get(LANGUAGE_KEY) or DEFAULT_LANGUAGE)


def _word_vector(vector: qe.SparseVector) -> Words:
    return Words(tuple(vector.indices), tuple(vector.values))
