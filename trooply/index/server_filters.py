"""The one translation of index conditions into Qdrant server filters, and the payload indexes they use."""

from collections.abc import Collection, Sequence

from qdrant_client import models

from trooply.index.base import Condition
from trooply.index.filters import BOOLEAN_FIELDS, KEYWORD_FIELDS, NUMERIC_FIELDS

# Flags are stored as 0/1, like on Qdrant Edge, so both engines read the same payloads.
PAYLOAD_INDEXES = {**{f: models.PayloadSchemaType.KEYWORD for f in KEYWORD_FIELDS},
                   **{f: models.PayloadSchemaType.FLOAT for f in NUMERIC_FIELDS},
                   **{f: models.PayloadSchemaType.INTEGER for f in BOOLEAN_FIELDS}}

# The shared collection's partition key: the server keeps each tenant's points together.
TENANT_INDEX = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)


def server_filter(conditions: Sequence[Condition], point_ids: Collection[str] | None = None) -> models.Filter | None:
    """`point_ids`: only these points as well."""
    if not conditions and point_ids is None:
        return None
    must: list[models.Condition] = [_field(c) for c in conditions if c.kind != "except"]
    if point_ids is not None:
        must.append(models.HasIdCondition(has_id=list(point_ids)))
    # `except` is must_not MatchAny, as on Edge: a product without the key is kept.
    return models.Filter(must=must, must_not=[models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.value)))
                                              for c in conditions if c.kind == "except"])


def _field(condition: Condition) -> models.FieldCondition:
    if condition.kind == "eq":
        return models.FieldCondition(key=condition.key, match=models.MatchValue(value=condition.value))
    if condition.kind == "any":
        return models.FieldCondition(key=condition.key, match=models.MatchAny(any=list(condition.value)))
    return models.FieldCondition(key=condition.key, range=models.Range(**condition.range))
