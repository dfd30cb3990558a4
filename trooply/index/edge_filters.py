"""The one translation of index conditions into Qdrant Edge filters, and the payload indexes they use."""

from collections.abc import Collection, Sequence

import qdrant_edge as qe

from trooply.index.base import Condition
from trooply.index.filters import BOOLEAN_FIELDS, KEYWORD_FIELDS, NUMERIC_FIELDS

# Flags are stored as 0/1 (a boolean match is turned into an integer by Qdrant Edge).
PAYLOAD_INDEXES: dict[str, qe.PayloadSchemaType | qe.KeywordIndexParams] = {
    **{f: qe.PayloadSchemaType.Keyword for f in KEYWORD_FIELDS},
    **{f: qe.PayloadSchemaType.Float for f in NUMERIC_FIELDS},
    **{f: qe.PayloadSchemaType.Integer for f in BOOLEAN_FIELDS}}


def tenant_index() -> qe.KeywordIndexParams:
    """The shared store's partition key: a keyword index that keeps each tenant's points together."""
    return qe.KeywordIndexParams(is_tenant=True)


def edge_filter(conditions: Sequence[Condition], point_ids: Collection[str] | None = None) -> qe.Filter | None:
    """`point_ids`: only these points as well."""
    if not conditions and point_ids is None:
        return None
    must: list[qe.FieldCondition | qe.IsEmptyCondition | qe.IsNullCondition | qe.HasIdCondition | qe.HasVectorCondition
               | qe.NestedCondition | qe.Filter] = [_field(c) for c in conditions if c.kind != "except"]
    if point_ids is not None:
        must.append(qe.HasIdCondition(set(point_ids)))
    # `except` is must_not MatchAny: a product without the key is kept (MatchExcept drops it).
    return qe.Filter(must=must, must_not=[qe.FieldCondition(c.key, match=qe.MatchAny(list(c.value)))
                                          for c in conditions if c.kind == "except"])


def _field(condition: Condition) -> qe.FieldCondition:
    if condition.kind == "eq":
        return qe.FieldCondition(condition.key, match=qe.MatchValue(condition.value))
    if condition.kind == "any":
        return qe.FieldCondition(condition.key, match=qe.MatchAny(list(condition.value)))
    return qe.FieldCondition(condition.key, range=qe.RangeFloat(**condition.range))
