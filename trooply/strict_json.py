"""JSON parsed strictly: what Python's json module accepts but our engines and encoders cannot (NaN and
Infinity, 1e400 read as infinity, integers of thousands of digits, lone surrogates, NUL, nesting deep enough
to exhaust the stack) is refused with an InvalidRequest naming the JSON path. Request bodies and import
files go through the same parser.
"""

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

from trooply.errors import InvalidRequest

MAX_DEPTH = 32
# I-JSON (RFC 7493): integers beyond what a double holds exactly are not interoperable.
MAX_SAFE_INTEGER = 2**53
_NUMBER_TYPES = {int, float, bool}


def parse_json(raw: bytes | str) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError as error:
        raise _too_deep() from error
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
                             code="invalid_json", status=400,
                             details={"line": error.lineno, "column": error.colno, "reason": error.msg}) from error
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest("the body is not valid JSON", code="invalid_json", status=400) from error
    _check_tree(value)
    return value


def _check_tree(root: Any) -> None:
    # Depth first, one iterator per open container: memory grows with the nesting, never with the size (an
    # 8 MB array of a million numbers keeps nothing per element), and the path is built only for an error.
    path: list[str | int] = []
    stack: list[Iterator[tuple[str | int, Any]]] = []
    _check_value(root, path, stack)
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            if stack:
                path.pop()
            continue
        key, value = entry
        if len(path) >= MAX_DEPTH:  # this value lies one level below its container
            raise _too_deep()
        if isinstance(key, str):
            _check_text(key, path)
        if isinstance(value, (dict, list)) or not _is_plain(value):
            path.append(key)
            if not _check_value(value, path, stack):
                path.pop()


def _is_plain(value: Any) -> bool:
    """A scalar that needs no check: the common case, answered without building anything."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and "\x00" not in value and value.isascii()


def _safe_numbers(items: list[Any]) -> bool:
    """A non-empty list of numbers a double holds exactly, checked in C (a vector, or a bulk of junk)."""
    if not items or not set(map(type, items)) <= _NUMBER_TYPES:
        return False
    try:  # finite first: a NaN would fool max()
        return all(map(math.isfinite, items)) and max(map(abs, items)) <= MAX_SAFE_INTEGER
    except OverflowError:  # an integer beyond a double: the walk names it
        return False


def _check_value(value: Any, path: list[str | int], stack: list[Iterator[tuple[str | int, Any]]]) -> bool:
    """Checks one value at `path`; True when it is a container now open on the stack."""
    if len(path) > MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        stack.append(iter(value.items()))
        return True
    if isinstance(value, list):
        if len(path) < MAX_DEPTH and _safe_numbers(value):
            return False
        stack.append(enumerate(value))
        return True
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _unsafe(path, "numbers must be finite (no NaN, Infinity or values beyond ±1.8e308)")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        raise _unsafe(path, f"integers must lie within ±{MAX_SAFE_INTEGER} (2^53)")
    return False


def _check_text(text: str, path: Sequence[str | int]) -> None:
    if "\x00" in text:  # PostgreSQL refuses NUL in text and JSONB: a 500 there, so a 422 here
        raise _unsafe(path, "text holds a NUL character (\\u0000)", code="invalid_text")
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _unsafe(path, "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character",
                      code="invalid_text") from None


def json_path(path: Sequence[str | int]) -> str:
    """products[3].attributes.size: how a client finds the value in what it sent."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _unsafe(path: Sequence[str | int], message: str, code: str = "invalid_number") -> InvalidRequest:
    where = json_path(path)
    details: dict[str, Any] = {"field": where}
    if len(path) >= 2 and path[0] == "products" and isinstance(path[1], int):
        details["index"] = path[1]
    return InvalidRequest(f"{where}: {message}", code=code, details=details)


def _too_deep() -> InvalidRequest:
    return InvalidRequest(f"JSON nested deeper than {MAX_DEPTH} levels", code="json_too_deep", status=400)
