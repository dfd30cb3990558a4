"""JSON parsed strictly: what Python's json module accepts but our engines and encoders cannot (NaN and
Infinity, 1e400 read as infinity, integers of thousands of digits, lone surrogates, NUL, nesting deep enough
to exhaust the stack) is refused with an InvalidRequest naming the JSON path. Request bodies and import
files go through the same parser.
"""

import json
import math
from typing import Any

from trooply.errors import InvalidRequest

MAX_DEPTH = 32
# I-JSON (RFC 7493): integers beyond what a double holds exactly are not interoperable.
MAX_SAFE_INTEGER = 2**53


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
    # Iterative, so a tree just under the parser's own recursion limit cannot exhaust the stack here.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _unsafe(path, "numbers must be finite (no NaN, Infinity or values beyond ±1.8e308)")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            raise _unsafe(path, f"integers must lie within ±{MAX_SAFE_INTEGER} (2^53)")


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if "\x00" in text:  # PostgreSQL refuses NUL in text and JSONB: a 500 there, so a 422 here
        raise _unsafe(path, "text holds a NUL character (\\u0000)", code="invalid_text")
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _unsafe(path, "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character",
                      code="invalid_text") from None


def json_path(path: tuple[str | int, ...]) -> str:
    """products[3].attributes.size: how a client finds the value in what it sent."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _unsafe(path: tuple[str | int, ...], message: str, code: str = "invalid_number") -> InvalidRequest:
    where = json_path(path)
    details: dict[str, Any] = {"field": where}
    if len(path) >= 2 and path[0] == "products" and isinstance(path[1], int):
        details["index"] = path[1]
    return InvalidRequest(f"{where}: {message}", code=code, details=details)


def _too_deep() -> InvalidRequest:
    return InvalidRequest(f"JSON nested deeper than {MAX_DEPTH} levels", code="json_too_deep", status=400)
