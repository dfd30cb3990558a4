"""ImageFetcher against a real server on 127.0.0.1; no test talks to any other address."""

import ipaddress
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.slow_server import DribbleServer
from trooply.config import Settings
from trooply.errors import ImageError
from trooply.vision.fetch import ImageFetcher, image_url_problem, is_blocked_address

PNG = solid_png(8, 8)
LOOPBACK_ONLY = ["127.0.0.1/32"]


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as s:
        yield s


def make_fetcher(**overrides: Any) -> ImageFetcher:
    params: dict[str, Any] = dict(connect_timeout=1.0, read_timeout=1.0, deadline=5.0, max_bytes=1 << 20,
                                  max_redirects=3, allowed_networks=LOOPBACK_ONLY)
    return ImageFetcher(**(params | overrides))


def fetch_error(fetcher: ImageFetcher, url: str) -> ImageError:
    with pytest.raises(ImageError) as caught:
        fetcher.fetch(url)
    return caught.value


def test_fetches_image_with_content_type(server: ImageServer) -> None:
    server.add_image("/a.png", PNG)
    image = make_fetcher().fetch(server.url("/a.png"))
    assert (image.data, image.content_type, image.final_url) == (PNG, "image/png", server.url("/a.png"))


def test_from_settings_keeps_the_address_rule_on(server: ImageServer) -> None:
    server.add_image("/a.png", PNG)
    fetcher = ImageFetcher.from_settings(Settings(fetch_allowed_networks=[], allow_private_urls=False))
    assert fetch_error(fetcher, server.url("/a.png")).code == "blocked_address"
    assert server.hits("/a.png") == 0


def test_allow_private_lifts_the_address_rule(server: ImageServer) -> None:
    server.add_image("/a.png", PNG)
    assert make_fetcher(allowed_networks=[], allow_private=True).fetch(server.url("/a.png")).data == PNG


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "http:///a.png",
                                 "not a url", "javascript:alert(1)"])
def test_rejects_non_http_urls(url: str) -> None:
    error = fetch_error(make_fetcher(), url)
    assert (error.code, error.status) == ("invalid_url", 422)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "127.1",
                                  "2130706433", "0.0.0.0"])
def test_loopback_in_any_spelling_is_blocked_before_connecting(server: ImageServer, host: str) -> None:
    server.add_image("/a.png", PNG)
    error = fetch_error(make_fetcher(allowed_networks=[]), f"http://{host}:{server.port}/a.png")
    assert (error.code, error.transient) == ("blocked_address", False)
    assert server.hits("/a.png") == 0


def test_one_bad_resolved_address_blocks_the_host(
        server: ImageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_image("/a.png", PNG)
    fake_dns(monkeypatch, {"shop.invalid": ["127.0.0.1", "127.0.0.2"]})
    assert fetch_error(make_fetcher(), f"http://shop.invalid:{server.port}/a.png").code == "blocked_address"
    assert server.hits("/a.png") == 0


def test_redirect_to_a_blocked_address_is_refused(server: ImageServer) -> None:
    server.add_redirect("/r", f"http://127.0.0.2:{server.port}/x")
    assert fetch_error(make_fetcher(), server.url("/r")).code == "blocked_address"
    assert server.hits("/r") == 1


def test_connects_to_the_checked_address_with_the_original_host(
        server: ImageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # .invalid never resolves for real, so success proves the request went to the pinned IP.
    server.add_image("/a.png", PNG)
    lookups = fake_dns(monkeypatch, {"shop.invalid": ["127.0.0.1"]})
    image = make_fetcher().fetch(f"http://shop.invalid:{server.port}/a.png")
    assert image.data == PNG and image.final_url == f"http://shop.invalid:{server.port}/a.png"
    assert server.last_host("/a.png") == f"shop.invalid:{server.port}"
    assert lookups == ["shop.invalid"]


@pytest.mark.parametrize(("status", "code", "transient"), [
    (404, "image_not_found", False), (410, "image_not_found", False), (403, "upstream_rejected", False),
    (400, "upstream_rejected", False), (429, "upstream_error", True), (500, "upstream_error", True),
    (503, "upstream_error", True)])
def test_http_status_mapping(server: ImageServer, status: int, code: str, transient: bool) -> None:
    server.add_status("/s", status)
    error = fetch_error(make_fetcher(), server.url("/s"))
    assert (error.code, error.transient, error.details) == (code, transient, {"status": status})


def test_flaky_host_succeeds_once_it_recovers(server: ImageServer) -> None:
    server.add_flaky("/f.png", failures=1, status=503, data=PNG)
    fetcher = make_fetcher()
    assert fetch_error(fetcher, server.url("/f.png")).transient
    assert fetcher.fetch(server.url("/f.png")).data == PNG
    assert server.hits("/f.png") == 2


def test_slow_server_hits_the_read_timeout(server: ImageServer) -> None:
    server.add_slow("/slow.png", 6.0, PNG)
    started = time.monotonic()
    error = fetch_error(make_fetcher(read_timeout=0.2), server.url("/slow.png"))
    assert (error.code, error.transient) == ("fetch_timeout", True)
    assert time.monotonic() - started < 4.0  # far from the 6 s the host takes, with room for a busy machine


def test_deadline_bounds_the_whole_fetch(server: ImageServer) -> None:
    server.add_slow("/slow.png", 6.0, PNG)
    server.add_redirect("/r", "/slow.png")
    started = time.monotonic()
    assert fetch_error(make_fetcher(read_timeout=8.0, deadline=0.3), server.url("/r")).code == "fetch_timeout"
    assert time.monotonic() - started < 4.0


def test_closed_port_is_a_transient_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fetch_error(make_fetcher(), f"http://127.0.0.1:{port}/a.png")
    assert (error.code, error.transient) == ("connection_failed", True)


@pytest.mark.parametrize("send_length", [True, False])
def test_byte_cap(server: ImageServer, send_length: bool) -> None:
    server.add_image("/big.png", bytes(5000), send_length=send_length)
    error = fetch_error(make_fetcher(max_bytes=4096), server.url("/big.png"))
    assert (error.code, error.status) == ("image_too_large", 422)


def test_body_at_the_cap_is_accepted(server: ImageServer) -> None:
    server.add_image("/exact.png", bytes(4096), send_length=False)
    assert len(make_fetcher(max_bytes=4096).fetch(server.url("/exact.png")).data) == 4096


def test_follows_two_redirects_relative_and_absolute(server: ImageServer) -> None:
    server.add_image("/final.png", PNG)
    server.add_redirect("/r1", "/r2")
    server.add_redirect("/r2", server.url("/final.png"))
    image = make_fetcher().fetch(server.url("/r1"))
    assert (image.data, image.final_url) == (PNG, server.url("/final.png"))


def test_chain_of_four_redirects_is_too_many(server: ImageServer) -> None:
    server.add_image("/final.png", PNG)
    for i in range(1, 4):
        server.add_redirect(f"/r{i}", f"/r{i + 1}")
    server.add_redirect("/r4", "/final.png")
    assert fetch_error(make_fetcher(), server.url("/r1")).code == "too_many_redirects"
    assert server.hits("/r4") == 1 and server.hits("/final.png") == 0


def test_redirect_to_another_scheme_is_invalid(server: ImageServer) -> None:
    server.add_redirect("/r", "file:///etc/passwd")
    assert fetch_error(make_fetcher(), server.url("/r")).code == "invalid_url"


def test_redirect_without_location_is_an_invalid_redirect(server: ImageServer) -> None:
    server.add_redirect("/r", "")  # an empty location sends no Location header
    error = fetch_error(make_fetcher(), server.url("/r"))
    assert (error.code, error.status, error.transient) == ("invalid_redirect", 422, False)


@pytest.mark.parametrize("location", ["http://xn--/a.png", "//a..b/a.png", "http://[zz]/a.png",
                                      "http://user:pass@127.0.0.1/a.png"])
def test_redirect_to_an_unusable_url_is_invalid(server: ImageServer, location: str) -> None:
    server.add_redirect("/r", location)
    error = fetch_error(make_fetcher(), server.url("/r"))
    assert (error.code, error.status) == ("invalid_url", 422)


@pytest.mark.parametrize("url", ["http://xn--/a.png", "http://xn--zz-zzz/a.png", "http://a..b/a.png",
                                 f"http://{'a' * 64}.example/a.png", "http://[::1%25lo]/a.png"])
def test_malformed_host_is_an_invalid_url(url: str) -> None:
    assert fetch_error(make_fetcher(), url).code == "invalid_url"


@pytest.mark.parametrize("userinfo", ["user:pass@", "user@", ":pass@"])
def test_url_with_credentials_is_refused_before_connecting(server: ImageServer, userinfo: str) -> None:
    server.add_image("/a.png", PNG)
    error = fetch_error(make_fetcher(), f"http://{userinfo}127.0.0.1:{server.port}/a.png")
    assert (error.code, error.status) == ("invalid_url", 422)
    assert server.hits("/a.png") == 0


@pytest.mark.parametrize("host", ["127.0.0.1.", "127.1.", "2130706433.", "127.0.0.1", "[::ffff:127.0.0.1]"])
def test_ip_literals_are_blocked_without_a_dns_lookup(
        server: ImageServer, monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    server.add_image("/a.png", PNG)
    lookups = fake_dns(monkeypatch, {})
    error = fetch_error(make_fetcher(allowed_networks=[]), f"http://{host}:{server.port}/a.png")
    assert (error.code, lookups, server.hits("/a.png")) == ("blocked_address", [], 0)


def test_trailing_dot_literal_is_fetched_when_allowed(server: ImageServer) -> None:
    server.add_image("/a.png", PNG)
    assert make_fetcher().fetch(f"http://127.0.0.1.:{server.port}/a.png").data == PNG


# Whitespace is refused as invalid_url rather than trimmed, so the URL checked is the URL that would be sent.
@pytest.mark.parametrize("url", ["http://127.0.0.1 :{port}/a.png", " http://127.0.0.1:{port}/a.png",
                                 "http://127.0.0.1:{port}/a.png ", "http://127.0.0.1%20:{port}/a.png"])
def test_whitespace_around_or_in_the_host_is_an_invalid_url(server: ImageServer, url: str) -> None:
    server.add_image("/a.png", PNG)
    assert fetch_error(make_fetcher(allowed_networks=[]), url.format(port=server.port)).code == "invalid_url"
    assert server.hits("/a.png") == 0


@pytest.mark.parametrize("address", ["fec0::1", "feff:ffff::1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1",
                                     "2002:7f00:1::1", "ff02::1", "127.0.0.1", "169.254.169.254", "100.64.0.1"])
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert not is_blocked_address(ipaddress.ip_address(address))


def test_site_local_ipv6_among_resolved_addresses_blocks_the_host(
        server: ImageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.1 comes first and is allowed, so only the fec0::/10 check keeps this from connecting.
    server.add_image("/a.png", PNG)
    fake_dns(monkeypatch, {"shop.invalid": ["127.0.0.1", "fec0::1"]})
    assert fetch_error(make_fetcher(), f"http://shop.invalid:{server.port}/a.png").code == "blocked_address"
    assert server.hits("/a.png") == 0


@pytest.mark.parametrize("url", ["http://shop.example/a.png", "https://xn--bcher-kva.example/a%20b.png",
                                 "https://shop.example:8443/a.png?w=200", "http://[2606:4700::1111]/a.png",
                                 "http://cdn_1.shop.example./a.png", "https://bücher.example/a.png"])
def test_image_url_problem_accepts_fetchable_urls(url: str) -> None:
    assert image_url_problem(url) is None


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://shop.example/a.png", "http(s)"), ("http:///a.png", "http(s)"), ("a.png", "http(s)"),
    ("http://user:pass@shop.example/a.png", "credentials"), ("http://xn--/a.png", "parsed"),
    ("http://a..b/a.png", "parsed"), ("http://sh\top.example/a.png", "parsed"),
    (" http://shop.example/a.png", "whitespace"), ("http://shop example/a.png", "malformed host")])
def test_image_url_problem_names_what_is_wrong(url: str, words: str) -> None:
    problem = image_url_problem(url)
    assert problem is not None and words in problem


HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n"


@pytest.mark.parametrize(("head", "drip"), [(b"", HEADERS + bytes(100)), (HEADERS, bytes(100))],
                         ids=["headers", "body"])
def test_deadline_holds_against_a_host_sending_a_byte_at_a_time(head: bytes, drip: bytes) -> None:
    # Each byte comes well inside the read timeout, so only the deadline can end the fetch.
    with DribbleServer(head, drip, interval_s=0.2) as server:
        started = time.monotonic()
        error = fetch_error(make_fetcher(read_timeout=1.0, deadline=0.7), server.url("/a.png"))
        elapsed = time.monotonic() - started
    assert (error.code, error.transient) == ("fetch_timeout", True)
    assert 0.6 < elapsed < 5.0  # the drip alone would take 20 s


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Answers `names` from the table and leaves every other name to the system, recording each name that
    would go to DNS; an IP literal never does, so it is answered by the system unrecorded."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, flags: int = 0, **kwargs: Any) -> list[Any]:
        try:
            return real(host, port, *args, flags=flags | socket.AI_NUMERICHOST, **kwargs)
        except socket.gaierror:
            if flags & socket.AI_NUMERICHOST:
                raise
        lookups.append(host)
        if host not in names:
            return real(host, port, *args, flags=flags, **kwargs)
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups
