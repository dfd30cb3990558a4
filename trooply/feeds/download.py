"""A feed's download: under the image address rule (every hop resolved and checked, the connection pinned to the
checked address), conditional on the last sync's validators, streamed to a temporary file with a byte cap, so
memory never holds the feed. A gzip file (`feed.xml.gz`, told by its first bytes) is unpacked to another temporary
file under the same cap, counted unpacked: a gzip bomb stops at the cap."""

import hashlib
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO

from trooply.config import Settings
from trooply.errors import ImageError, TrooplyError
from trooply.vision.fetch import ImageFetcher

NOT_MODIFIED = 304
CHUNK = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate
# The fetcher's codes, told about a feed rather than an image.
_FEED_MESSAGES = {
    "blocked_address": "the feed URL resolves to a non-public address",
    "connection_failed": "could not connect to the feed's host",
    "fetch_timeout": "downloading the feed took longer than TROOPLY_FEED_FETCH_DEADLINE",
    "too_many_redirects": "the feed URL redirects too many times",
    "invalid_url": "the feed URL (or a redirect) cannot be fetched",
    "invalid_redirect": "the feed's host answered a redirect without a Location",
}


class FeedError(TrooplyError):
    """A sync that cannot read its feed: reported on the sync, with a code."""

    code = "feed_unavailable"
    status = 422


@dataclass
class Download:
    """The feed's body in a temporary file (closing it deletes it), or `file` None when not modified."""

    file: IO[bytes] | None
    size: int = 0
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class FeedDownloader:
    def __init__(self, fetcher: ImageFetcher, max_bytes: int) -> None:
        self.fetcher = fetcher
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> "FeedDownloader":
        fetch = settings.fetch
        fetcher = ImageFetcher(connect_timeout=fetch.connect_timeout, read_timeout=fetch.read_timeout,
                               deadline=settings.feeds.fetch_deadline, max_bytes=settings.feeds.max_bytes,
                               max_redirects=fetch.max_redirects, allow_private=fetch.allow_private_urls,
                               allowed_networks=fetch.allowed_networks)
        return cls(fetcher, settings.feeds.max_bytes)

    def close(self) -> None:
        self.fetcher.close()

    def download(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Download:
        headers = {"Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            with self.fetcher.open(url, headers) as (response, _final_url):
                if response.status_code == NOT_MODIFIED:
                    return Download(None, etag=etag, last_modified=last_modified)
                if response.status_code >= 300:
                    raise FeedError(f"the feed URL answered HTTP {response.status_code}", code="feed_http_error",
                                    details={"status": response.status_code})
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > self.max_bytes:
                    raise self._too_large()
                file: IO[bytes] = tempfile.TemporaryFile(prefix="trooply-feed-")  # noqa: SIM115  (the caller closes it)
                try:
                    digest, size = hashlib.sha256(), 0
                    # Counted decoded, as written: a compressed feed cannot expand past the cap.
                    for chunk in response.iter_bytes(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self._too_large()
                        digest.update(chunk)
                        file.write(chunk)
                    file.seek(0)
                    if file.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                        file.seek(0)
                        file = self._gunzip(file)
                    file.seek(0)
                except BaseException:
                    file.close()
                    raise
                return Download(file, size, digest.hexdigest(), response.headers.get("etag"),
                                response.headers.get("last-modified"))
        except ImageError as error:
            raise FeedError(_FEED_MESSAGES.get(error.code, error.message), code=error.code,
                            details=error.details) from None

    def _gunzip(self, packed: IO[bytes]) -> IO[bytes]:
        """The gzip file's content (every member of it), a chunk at a time, under the byte cap; `packed` is
        closed."""
        with packed:
            unpacked = tempfile.TemporaryFile(prefix="trooply-feed-")  # noqa: SIM115  (returned open)
            try:
                self._inflate(packed, unpacked)
            except BaseException:
                unpacked.close()
                raise
            return unpacked

    def _inflate(self, packed: IO[bytes], unpacked: IO[bytes]) -> None:
        inflater, fed, size, pending = zlib.decompressobj(_GZIP_WBITS), False, 0, b""
        try:
            while True:
                if not pending:
                    pending = packed.read(CHUNK)
                    if not pending:
                        break
                fed = True
                out = inflater.decompress(pending, CHUNK)  # at most a chunk out per call, however it expands
                size += len(out)
                if size > self.max_bytes:
                    raise self._too_large()
                unpacked.write(out)
                if inflater.eof:  # a member ended: another may follow
                    pending, inflater, fed = inflater.unused_data, zlib.decompressobj(_GZIP_WBITS), False
                else:
                    pending = inflater.unconsumed_tail
        except zlib.error as error:
            raise FeedError(f"the feed is a gzip file that cannot be unpacked: {error}", code="invalid_feed") from None
        if fed and not inflater.eof:
            raise FeedError("the feed is a gzip file cut short", code="invalid_feed")

    def _too_large(self) -> FeedError:
        return FeedError(f"the feed is larger than {self.max_bytes:,} bytes (TROOPLY_FEED_MAX_BYTES)",
                         code="feed_too_large", details={"max_bytes": self.max_bytes})
