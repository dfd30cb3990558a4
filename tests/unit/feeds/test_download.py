"""A feed's download from a real 127.0.0.1 server: conditional on the last validators, streamed to a file under a
byte cap counted on the decompressed body, and under the image address rule."""

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
