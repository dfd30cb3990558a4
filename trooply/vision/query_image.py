"""A query image given by URL (fetched under the catalogue's safety rules) or uploaded bytes, loaded in memory."""

from dataclasses import dataclass

from PIL import Image

from trooply.errors import InvalidRequest
from trooply.vision.decode import decode_image
from trooply.vision.fetch import ImageFetcher


@dataclass(frozen=True)
class QueryImage:
    url: str | None = None
    data: bytes | None = None


class QueryImageLoader:
    def __init__(self, fetcher: ImageFetcher, max_pixels: int) -> None:
        self.fetcher = fetcher
        self.max_pixels = max_pixels

    def load(self, image: QueryImage) -> Image.Image:
        if (image.url is None) == (image.data is None):
            raise InvalidRequest("send exactly one image: `image_url` or an uploaded file", code="image_required")
        data = image.data if image.data is not None else self.fetcher.fetch(image.url).data
        return decode_image(data, self.max_pixels).image
