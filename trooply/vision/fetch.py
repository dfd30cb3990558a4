"""Fetch images from merchant URLs without letting a URL reach our own network.

Every hop is resolved once, every resolved address is checked, and the connection goes to the
checked address itself (Host header and TLS name kept), so DNS rebinding cannot swap it afterwards.
"""

import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from trooply.config import Settings
from trooply.errors import ImageError

# Privacy: httpx logs every request URL at INFO, and a query image URL must never reach the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    final_url: str
    content_type: str | None


def is_blocked_address(ip: IPAddress) -> bool:
    """True for anything not publicly routable, judged on the IPv4 address an IPv6 one embeds."""
    if isinstance(ip, ipaddress.IPv6Address):
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
        # No keep-alive for https: the pool keys connections by IP, so a connection whose certificate
        # was checked for one host name would otherwise be reused for another name on the same IP.
        https = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        # trust_env=False: an environment proxy would make the connection for us, unpinned and unchecked.
        self._client = httpx.Client(trust_env=False, mounts={"https://": https})

    @classmethod
    def from_settings(cls, settings: Settings) -> "ImageFetcher":
        return cls(connect_timeout=settings.fetch_connect_timeout, read_timeout=settings.fetch_read_timeout,
                   deadline=settings.fetch_deadline, max_bytes=settings.max_image_bytes,
                   max_redirects=settings.fetch_max_redirects, allow_private=settings.allow_private_urls,
                   allowed_networks=settings.fetch_allowed_networks)

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + self.deadline
        current = _parse(url)
        try:
            for _ in range(self.max_redirects + 1):
                response = self._send(current, deadline)
                try:
                    if not response.is_redirect:
                        _check_status(response.status_code)
                        return FetchedImage(self._read_body(response, deadline), str(current),
                                            response.headers.get("content-type"))
                    # Relative locations resolve against the real URL, not the pinned-IP one.
                    current = _parse(response.headers["location"], base=current)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise _timeout() from exc
        except httpx.RequestError as exc:
            raise ImageError("could not connect to the image host", code="connection_failed",
                             transient=True) from exc
        raise ImageError(f"more than {self.max_redirects} redirects", code="too_many_redirects")

    def _send(self, url: httpx.URL, deadline: float) -> httpx.Response:
        ip = self._resolve(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout()
        # Capping each timeout by what is left keeps a single wait from outliving the deadline.
        connect, read = min(self.connect_timeout, remaining), min(self.read_timeout, remaining)
        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        request = self._client.build_request("GET", url.copy_with(host=str(ip)),
                                             headers={"Host": url.netloc.decode("ascii")},
                                             extensions=extensions, timeout=timeout)
        return self._client.send(request, stream=True)

    def _resolve(self, url: httpx.URL) -> IPAddress:
        try:
            infos = socket.getaddrinfo(url.raw_host.decode("ascii"), None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            # Only EAI_AGAIN is a resolver hiccup; an unknown name stays unknown.
            raise ImageError(f"cannot resolve {url.host}", code="connection_failed",
                             transient=exc.errno == socket.EAI_AGAIN) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        # One bad address is enough: which one the connection would use is not ours to predict.
        if not all(self._permitted(ip) for ip in addresses):
            raise ImageError(f"{url.host} resolves to a non-public address", code="blocked_address")
        return addresses[0]

    def _permitted(self, ip: IPAddress) -> bool:
        return self.allow_private or not is_blocked_address(ip) or any(ip in n for n in self.allowed_networks)

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _too_large(self.max_bytes)
        body = bytearray()
        # Counted as it arrives: Content-Length may be absent, wrong, or describe a compressed body.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise _too_large(self.max_bytes)
            if time.monotonic() > deadline:
                raise _timeout()
        return bytes(body)


def _parse(url: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        parsed = base.join(url) if base is not None else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ImageError("invalid image URL", code="invalid_url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ImageError("image URL must be http(s) with a host", code="invalid_url")
    return parsed


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


def _too_large(limit: int) -> ImageError:
    return ImageError(f"image is larger than {limit} bytes", code="image_too_large")
