"""A feed's download from a real 127.0.0.1 server: conditional on the last validators, streamed to a file under a
byte cap counted on the decompressed body, and under the image address rule."""

import gzip

import pytest

from tests.conftest import make_settings
from tests.support.feed_server import FeedServer
from trooply.feeds.download import FeedDownloader, FeedError

BODY = "<rss><channel>" + "<item><id>x</id></item>" * 200 + "</channel></rss>"


@pytest.fixture
def downloader(tmp_path):
    loader = FeedDownloader.from_settings(make_settings(tmp_path, feed_max_bytes=len(BODY) + 10))
    yield loader
    loader.close()


def test_a_feed_is_downloaded_to_a_file_then_answered_304_while_unchanged(downloader) -> None:
    with FeedServer() as server:
        server.publish(BODY)
        first = downloader.download(server.url())
        assert first.file is not None and first.file.read().decode() == BODY
        assert first.size == len(BODY) and first.etag and first.last_modified and len(first.sha256 or "") == 64
        again = downloader.download(server.url(), first.etag, first.last_modified)
        assert again.file is None and server.answers[304] == 1
        server.publish(BODY + " ")
        assert downloader.download(server.url(), first.etag, first.last_modified).file is not None


def test_a_compressed_feed_is_capped_on_its_decompressed_size(downloader) -> None:
    with FeedServer() as server:
        server.gzip = True
        server.publish(BODY)
        download = downloader.download(server.url())
        assert download.file is not None and download.file.read().decode() == BODY
        server.publish(BODY * 2)  # compresses to a few hundred bytes, under the cap; decompressed, over it
        with pytest.raises(FeedError) as refused:
            downloader.download(server.url())
        assert refused.value.code == "feed_too_large"


def test_the_address_rule_applies(tmp_path) -> None:
    strict = FeedDownloader.from_settings(make_settings(tmp_path, fetch_allowed_networks=[]))
    try:
        with FeedServer() as server, pytest.raises(FeedError) as refused:
            server.publish(BODY)
            strict.download(server.url())
        assert refused.value.code == "blocked_address" and "feed URL" in refused.value.message
        assert server.answers.total() == 0
    finally:
        strict.close()


def test_a_gzip_file_feed_is_unpacked_by_its_magic_bytes(downloader) -> None:
    with FeedServer() as server:
        half = len(BODY) // 2
        server.publish(gzip.compress(BODY[:half].encode()) + gzip.compress(BODY[half:].encode()))  # two members
        download = downloader.download(server.url("/feed.xml.gz"))
        assert download.file is not None and download.file.read().decode() == BODY


def test_a_gzip_bomb_stops_at_the_cap_and_a_broken_gzip_is_refused(downloader) -> None:
    with FeedServer() as server:
        bomb_bytes = gzip.compress(b"<rss>" + b" " * 4_000_000)  # under the cap packed (~4 KB), 4 MB unpacked
        assert len(bomb_bytes) < downloader.max_bytes
        server.publish(bomb_bytes)
        with pytest.raises(FeedError) as bomb:
            downloader.download(server.url())
        assert bomb.value.code == "feed_too_large"
        server.publish(gzip.compress(BODY.encode())[:-40])
        with pytest.raises(FeedError) as cut:
            downloader.download(server.url())
        assert (cut.value.code, cut.value.message) == ("invalid_feed", "the feed is a gzip file cut short")
        server.publish(b"\x1f\x8b" + b"not gzip at all")
        with pytest.raises(FeedError) as broken:
            downloader.download(server.url())
        assert broken.value.code == "invalid_feed" and "cannot be unpacked" in broken.value.message
