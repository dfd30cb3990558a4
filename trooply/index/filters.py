"""The public filter syntax, validated and translated into index pre-filter conditions.

Keyword values are matched case-insensitively: they are lower-cased both when stored and when
queried. Booleans are stored as 0/1 because Qdrant Edge turns a boolean match into an integer.

Attribute names are the merchant's own: any name a product may hold can be filtered and grouped on. A name
that both engines read as a plain JSON path key is stored under `attributes`; any other (spaces, brackets,
quotes, look-alikes of a dot, non-ASCII) under `attributes_hex` by its UTF-8 hex spelling, so no name is
ever parsed as a path (`a[0]` is not an array index) and no two names share a key.
"""

import math
import re
from dataclasses import replace
from typing import Any

from trooply.errors import InvalidRequest
from trooply.index.base import Condition

KEYWORD_FIELDS = ("category", "brand", "currency")
NUMERIC_FIELDS = ("price",)
BOOLEAN_FIELDS = ("in_stock",)
RANGE_OPS = ("gte", "gt", "lte", "lt")
SET_OPS = ("in", "nin")
MAX_ATTRIBUTE_KEY = 64
ATTRIBUTES = "attributes"
HEX_ATTRIBUTES = "attributes_hex"
_PLAIN_ATTRIBUTE = re.compile(r"[A-Za-z0-9_-]+")


def attribute_name_problem(name: str) -> str | None:
    """Why a product cannot hold an attribute of this name (None: it can); filters apply the same rule."""
    if not 0 < len(name) <= MAX_ATTRIBUTE_KEY or "." in name:
        # Attributes are flat (names hold no dots): a nested path would silently match nothing.
        return f"attribute names are 1-{MAX_ATTRIBUTE_KEY} characters without dots; attributes are not nested"
    return None


def attribute_payload_key(name: str) -> str:
    """Where the index payload holds the attribute of this (stored, stripped) name."""
    if _PLAIN_ATTRIBUTE.fullmatch(name):
        return f"{ATTRIBUTES}.{name}"
    return f"{HEX_ATTRIBUTES}.{name.encode('utf-8', 'surrogatepass').hex()}"


def payload_key(field: str) -> str:
    """The index payload key of a filterable field (`attributes.size (EU)` → `attributes_hex.73697a…`)."""
    if field.startswith(f"{ATTRIBUTES}."):
        return attribute_payload_key(_attribute_name(field))
    return field


def field_value(payload: dict[str, Any], field: str) -> Any:
    """A filterable field's value in an index payload, normalised as filters match it; None when absent."""
    return payload_value(payload, payload_key(field))


def shown_value(payload: dict[str, Any], field: str) -> Any:
    """A filterable field's value as the merchant sent it (the payload's metadata), else as normalised."""
    metadata = payload.get("metadata") or {}
    if field.startswith(f"{ATTRIBUTES}."):
        value = (metadata.get(ATTRIBUTES) or {}).get(_attribute_name(field))
    else:
        value = metadata.get(field)
    return value if value is not None else field_value(payload, field)


def _attribute_name(field: str) -> str:
    # Stripped like the product's attribute names are when stored.
    return field.removeprefix(f"{ATTRIBUTES}.").strip()


def normalise_value(value: Any) -> Any:
    """How a scalar is stored for filtering: lower-cased text, 0/1 flags, float numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def filterable_payload(metadata: dict[str, Any]) -> dict[str, Any]:
    """The filterable part of a product's index payload, normalised like queries are."""
    payload: dict[str, Any] = {}
    for key in (*KEYWORD_FIELDS, *NUMERIC_FIELDS, *BOOLEAN_FIELDS):
        value = metadata.get(key)
        if value is not None:
            payload[key] = normalise_value(value)
    # Both maps are always written, so a payload update drops the names a product no longer has.
    payload[ATTRIBUTES], payload[HEX_ATTRIBUTES] = {}, {}
    for name, value in (metadata.get(ATTRIBUTES) or {}).items():
        if (normalised := normalise_value(value)) is not None:
            section, key = attribute_payload_key(name).split(".", 1)
            payload[section][key] = normalised
    return payload


def parse_filters(filters: dict[str, Any] | None) -> list[Condition]:
    if filters is None:
        return []
    if not isinstance(filters, dict):
        raise _invalid("filters", "must be an object of field: condition")
    return [condition for field, spec in filters.items() for condition in _parse_field(field, spec)]


def _parse_field(field: str, spec: Any) -> list[Condition]:
    kind = _field_kind(field)
    if isinstance(spec, dict):
        conditions = _parse_operators(field, kind, spec)
    elif isinstance(spec, list):
        conditions = [_set_condition(field, kind, "in", spec)]
    else:
        conditions = [_equality(field, kind, spec)]
    key = payload_key(field)
    return [replace(condition, key=key) for condition in conditions]


def _field_kind(field: str) -> str:
    if field in KEYWORD_FIELDS:
        return "keyword"
    if field in NUMERIC_FIELDS:
        return "number"
    if field in BOOLEAN_FIELDS:
        return "boolean"
    if field.startswith(f"{ATTRIBUTES}."):
        if (problem := attribute_name_problem(_attribute_name(field))) is not None:
            raise _invalid(field, problem)
        return "attribute"
    raise _invalid(field, "unknown filter field; use category, brand, currency, price, in_stock "
                          "or attributes.<name>")


def _parse_operators(field: str, kind: str, spec: dict[str, Any]) -> list[Condition]:
    if not spec:
        raise _invalid(field, "empty condition")
    unknown = set(spec) - set(RANGE_OPS) - set(SET_OPS)
    if unknown:
        raise _invalid(field, f"unknown operator {sorted(unknown)[0]!r}; use "
                              f"{', '.join(RANGE_OPS + SET_OPS)}")
    conditions = [_set_condition(field, kind, op, spec[op]) for op in SET_OPS if op in spec]
    bounds = {op: spec[op] for op in RANGE_OPS if op in spec}
    if bounds:
        conditions.append(_range(field, kind, bounds))
    return conditions


def _equality(field: str, kind: str, value: Any) -> Condition:
    _check_scalar(field, kind, value)
    if _is_number(value):
        return Condition(field, "range", range={"gte": float(value), "lte": float(value)})
    return Condition(field, "eq", normalise_value(value))


def _set_condition(field: str, kind: str, op: str, values: Any) -> Condition:
    if not isinstance(values, list) or not values:
        raise _invalid(field, f"'{op}' takes a non-empty list")
    if len(values) > 100:
        raise _invalid(field, f"'{op}' takes at most 100 values")
    for value in values:
        _check_scalar(field, kind, value)
        if _is_number(value):
            raise _invalid(field, "lists match text or flags; use gte/lte for numbers")
    normalised = [normalise_value(v) for v in values]
    return Condition(field, "any" if op == "in" else "except", normalised)


def _range(field: str, kind: str, bounds: dict[str, Any]) -> Condition:
    if kind not in ("number", "attribute"):
        raise _invalid(field, "range operators apply to numeric fields only")
    for op, bound in bounds.items():
        if not _is_number(bound):
            raise _invalid(field, f"'{op}' takes a number")
    return Condition(field, "range", range={op: float(b) for op, b in bounds.items()})


def _check_scalar(field: str, kind: str, value: Any) -> None:
    expected = {
        "keyword": (lambda v: isinstance(v, str), "a string"),
        "number": (_is_number, "a number"),
        "boolean": (lambda v: isinstance(v, bool), "true or false"),
        "attribute": (lambda v: isinstance(v, (str, bool)) or _is_number(v), "a string, number or boolean"),
    }[kind]
    if not expected[0](value):
        raise _invalid(field, f"expected {expected[1]}, got {type(value).__name__}")


def _is_number(value: Any) -> bool:
    # Finite and exactly representable: the engine compares doubles, and a panic there would be a 500.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) <= 2**53


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"filters.{field}: {message}" if field != "filters" else f"filters: {message}",
                          code="invalid_filter", details={"field": field})


def check_group_field(field: str) -> None:
    """`group_by` takes any field a filter can name."""
    try:
        _field_kind(field)
    except InvalidRequest:
        raise InvalidRequest(f"group_by: {field!r} is not a filterable field; use category, brand, currency, price, "
                             "in_stock or attributes.<name>", code="invalid_group_by",
                             details={"field": "group_by"}) from None


def payload_matches(conditions: tuple[Condition, ...] | list[Condition], payload: dict[str, Any]) -> bool:
    """The same conditions Qdrant pre-filters on, evaluated in Python (merchandising rules use it)."""
    return all(_holds(condition, payload_value(payload, condition.key)) for condition in conditions)


def payload_value(payload: dict[str, Any], key: str) -> Any:
    """The value at a dotted key (`attributes.colour`), None when absent."""
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _holds(condition: Condition, value: Any) -> bool:
    if condition.kind == "eq":
        return value is not None and value == condition.value
    if condition.kind == "any":
        return value is not None and value in condition.value
    if condition.kind == "except":
        return value not in condition.value
    if not _is_number(value):
        return False
    bounds = condition.range
    return (value >= bounds.get("gte", -float("inf")) and value > bounds.get("gt", -float("inf"))
            and value <= bounds.get("lte", float("inf")) and value < bounds.get("lt", float("inf")))
