"""Fetch images from merchant URLs without letting a URL reach our own network.

Every hop is resolved once, every resolved address is checked, and the connection goes to the
checked address itself (Host header and TLS name kept), so DNS rebinding cannot swap it afterwards.
"""

import ipaddress
import logging
import re
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from trooply.config import Settings
from trooply.errors import ImageError, byte_size

# Privacy: httpx logs every request URL at INFO, and a query image URL must never reach the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What a host may hold once httpx has parsed it (IDNA names arrive as xn-- ASCII); httpx percent-encodes a
# space or other odd byte into the host, and a host carrying one must not reach the resolver.
HOST_CHARS = re.compile(r"[A-Za-z0-9._:-]+")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
USER_AGENT = "Trooply image fetcher"


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    final_url: str
    content_type: str | None


def image_url_problem(url: str) -> str | None:
    """Why `url` can never be fetched, for a person to read, or None when it may be."""
    # Surrounding whitespace is refused rather than trimmed: the URL checked must be the URL sent.
    if url != url.strip():
        return "image URL must not have surrounding whitespace"
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoded lazily: a malformed xn-- label fails here
        raw_host = parsed.raw_host.decode("ascii")
        # The resolver encodes the host this way; an empty or overlong label would fail there, not here.
        raw_host.encode("idna")
    except (httpx.InvalidURL, ValueError):  # IDNAError and UnicodeError are ValueErrors
        return "image URL cannot be parsed"
    if parsed.scheme not in ("http", "https") or not host:
        return "image URL must be http(s) with a host"
    if parsed.userinfo:
        return "image URL must not carry credentials"
    if not HOST_CHARS.fullmatch(raw_host):
        return "image URL has a malformed host"
    return None


def is_blocked_address(ip: IPAddress) -> bool:
    """True for anything not publicly routable, judged on the IPv4 address an IPv6 one embeds."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Deprecated site-local fec0::/10 is still routed inside some networks, yet is_global says True.
        if ip.is_site_local:
            return True
        # ::ffff:a.b.c.d and 6to4 (2002::/16) land on the embedded IPv4 host.
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    # is_global is False for loopback, private, link-local (169.254.169.254 metadata), shared
    # 100.64/10 (another metadata range), unspecified and reserved ranges; multicast can be "global".
    return not ip.is_global or ip.is_multicast or ip.is_reserved


class ImageFetcher:
    """Thread-safe: one shared httpx client, no per-call state on the instance."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, deadline: float, max_bytes: int,
                 max_redirects: int, allow_private: bool = False,
                 allowed_networks: Iterable[str] = ()) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self.allowed_networks = tuple(ipaddress.ip_network(n) for n in allowed_networks)
        # A bare transport, not a Client: no environment proxy connecting for us unpinned, no cookie jar
        # shared between hosts and tenants, and no Location parsed by httpx before _follow checks it.
        # No keep-alive: a connection serves one request, so its waits answer to that fetch's deadline, and
        # one whose certificate was checked for a host name is never reused for another name on the same IP.
        self._transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    @classmethod
    def from_settings(cls, settings: Settings) -> "ImageFetcher":
        return cls(connect_timeout=settings.fetch.connect_timeout, read_timeout=settings.fetch.read_timeout,
                   deadline=settings.fetch.deadline, max_bytes=settings.fetch.max_image_bytes,
                   max_redirects=settings.fetch.max_redirects, allow_private=settings.fetch.allow_private_urls,
                   allowed_networks=settings.fetch.allowed_networks)

    def close(self) -> None:
        self._transport.close()

    def fetch(self, url: str) -> FetchedImage:
        with self.open(url) as (response, final_url):
            _check_status(response.status_code)
            return FetchedImage(self._read_body(response), str(final_url), response.headers.get("content-type"))

    @contextmanager
    def open(self, url: str, headers: Mapping[str, str] | None = None) -> Iterator[tuple[httpx.Response, httpx.URL]]:
        """The answer after following redirects (every hop checked), its body not yet read, and the URL that gave
        it; the caller checks the status. Network errors while it is open, reading included, are ImageErrors."""
        deadline = _Deadline(self.deadline)
        current = _parse(url)
        try:
            for _ in range(self.max_redirects + 1):
                response = self._send(current, deadline, headers)
                try:
                    if response.status_code not in REDIRECT_STATUSES:
                        yield response, current
                        return
                    current = _follow(response, current)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise _timeout() from exc
        except httpx.RequestError as exc:
            raise ImageError("could not connect to the image host", code="connection_failed",
                             transient=True) from exc
        raise ImageError(f"more than {self.max_redirects} redirects", code="too_many_redirects")

    def _send(self, url: httpx.URL, deadline: "_Deadline", extra_headers: Mapping[str, str] | None = None
              ) -> httpx.Response:
        ip = self._resolve(url)
        remaining = deadline.left()
        # Capping each timeout by what is left keeps a single wait from outliving the deadline.
        connect, read = min(self.connect_timeout, remaining), min(self.read_timeout, remaining)
        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        extensions: dict[str, Any] = {"timeout": timeout.as_dict(), "trace": deadline.cap_waits}
        if url.scheme == "https":
            extensions["sni_hostname"] = url.raw_host.decode("ascii")
        headers = {**(extra_headers or {}), "Host": url.netloc.decode("ascii"), "User-Agent": USER_AGENT,
                   "Accept": "*/*"}
        request = httpx.Request("GET", url.copy_with(host=str(ip)), headers=headers, extensions=extensions)
        return self._transport.handle_request(request)

    def _resolve(self, url: httpx.URL) -> IPAddress:
        try:
            infos = _lookup(url.raw_host.decode("ascii"))
        except socket.gaierror as exc:
            # Only EAI_AGAIN is a resolver hiccup; an unknown name stays unknown.
            raise ImageError(f"cannot resolve {url.host}", code="connection_failed",
                             transient=exc.errno == socket.EAI_AGAIN) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        # One bad address is enough: which one the connection would use is not ours to predict.
        blocked = [ip for ip in addresses if not self._permitted(ip)]
        if blocked:
            raise _blocked(url.host, blocked[0])
        return addresses[0]

    def _permitted(self, ip: IPAddress) -> bool:
        return self.allow_private or not is_blocked_address(ip) or any(ip in n for n in self.allowed_networks)

    def _read_body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _too_large(self.max_bytes)
        body = bytearray()
        # Counted as it arrives: Content-Length may be absent, wrong, or describe a compressed body.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise _too_large(self.max_bytes)
        return bytes(body)


class _Deadline:
    """One fetch's time limit, imposed on every socket wait so a host dribbling bytes cannot outlive it."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def left(self) -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise _timeout()
        return left

    def cap_waits(self, event: str, info: dict[str, Any]) -> None:
        """httpx trace hook: wraps each new stream (TCP, then TLS) so no read or write waits past the deadline."""
        # httpcore applies one read timeout to a whole phase, so headers or a body sent a byte at a time
        # would otherwise restart it with every byte.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info["return_value"]
            read, write = stream.read, stream.write
            stream.read = lambda max_bytes, timeout=None: read(max_bytes, self._cap(timeout))
            stream.write = lambda buffer, timeout=None: write(buffer, self._cap(timeout))

    def _cap(self, timeout: float | None) -> float:
        return self.left() if timeout is None else min(timeout, self.left())


def _lookup(host: str) -> list[Any]:
    try:
        # An IP literal, in any spelling the resolver takes and with or without a trailing dot, is never
        # sent to DNS.
        return socket.getaddrinfo(host.removesuffix("."), None, type=socket.SOCK_STREAM,
                                  flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)


def _parse(url: str) -> httpx.URL:
    problem = image_url_problem(url)
    if problem is not None:
        raise ImageError(problem, code="invalid_url")
    return httpx.URL(url)


def _follow(response: httpx.Response, current: httpx.URL) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise ImageError(f"image host answered HTTP {response.status_code} without a Location",
                         code="invalid_redirect", details={"status": response.status_code})
    try:
        # Relative locations resolve against the real URL, not the pinned-IP one.
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ImageError("image host redirected to an invalid URL", code="invalid_url") from exc
    return _parse(str(target))


def _check_status(status: int) -> None:
    if status < 300:
        return
    details = {"status": status}
    if status in (404, 410):
        raise ImageError(f"image URL answered HTTP {status}", code="image_not_found", details=details)
    if status == 429 or status >= 500:
        raise ImageError(f"image host answered HTTP {status}", code="upstream_error", details=details,
                         transient=True)
    raise ImageError(f"image host refused with HTTP {status}", code="upstream_rejected", details=details)


def _timeout() -> ImageError:
    return ImageError("fetching the image timed out", code="fetch_timeout", transient=True)


def _blocked(host: str, ip: IPAddress) -> ImageError:
    """Names the setting that lets a test or a local image host through, so a first run needs no search."""
    network = f"{ip}/{ip.max_prefixlen}"
    return ImageError(
        f"{host} resolves to a non-public address ({ip}); to fetch from it on purpose (a local image host), "
        f"allow it: TROOPLY_FETCH_ALLOWED_NETWORKS='[\"{network}\"]'", code="blocked_address",
        details={"host": host, "address": str(ip), "setting": "TROOPLY_FETCH_ALLOWED_NETWORKS",
                 "example": f'["{network}"]'})


def _too_large(limit: int) -> ImageError:
    return ImageError(f"image is larger than {byte_size(limit)}", code="image_too_large")
