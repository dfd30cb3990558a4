"""Browser origins a tenant allows its publishable key from: exact `scheme://host[:port]`, as browsers send
them in the `Origin` header (lower case, no path, the default port left out)."""

from urllib.parse import urlsplit

from trooply.errors import InvalidRequest

MAX_ORIGINS = 50
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(raw: str) -> str:
    """The origin as a browser writes it; `invalid_origin` for a wildcard, a path, a query or another scheme."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _invalid(raw, "not a URL") from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise _invalid(raw, "use http:// or https:// and a host")
    if "*" in text:
        raise _invalid(raw, "wildcards are not allowed: list each origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise _invalid(raw, "an origin is scheme, host and port only (no path, query or user)")
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def normalise_origins(raw: list[str]) -> list[str]:
    """A tenant's whole list: each normalised, duplicates dropped, at most MAX_ORIGINS."""
    origins = list(dict.fromkeys(normalise_origin(origin) for origin in raw))
    if len(origins) > MAX_ORIGINS:
        raise InvalidRequest(f"at most {MAX_ORIGINS} allowed origins", code="too_many_origins",
                             details={"max": MAX_ORIGINS})
    return origins


def _invalid(raw: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"{raw[:100]!r} is not an origin: {why}", code="invalid_origin")
