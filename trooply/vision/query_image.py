"""A query image given by URL (fetched under the catalogue's safety rules) or uploaded bytes, loaded in memory."""

from dataclasses import dataclass

from PIL import Image

from trooply.errors import InvalidRequest
from trooply.vision.decode import DECODE_MAX_SIDE, MAX_CONCURRENT_LARGE_DECODES, DecodedImage, decode_image
from trooply.vision.fetch import ImageFetcher


@dataclass(frozen=True)
class QueryImage:
    url: str | None = None
    data: bytes | None = None


class QueryImageLoader:
    def __init__(self, fetcher: ImageFetcher, max_pixels: int, max_side: int | None = DECODE_MAX_SIDE,
                 large_decodes: int = MAX_CONCURRENT_LARGE_DECODES) -> None:
        self.fetcher = fetcher
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.large_decodes = large_decodes

    def decode(self, image: QueryImage) -> DecodedImage:
        """The pixels, reduced, with the original size that boxes and sizes are given in."""
        if image.data is not None:
            data = image.data
        elif image.url is not None:
            # The API fetches URLs on its own pool first; a URL still without bytes here (eval) is fetched now.
            data = self.fetcher.fetch(image.url).data
        else:
            raise InvalidRequest("send an image: `image_url` or an uploaded file", code="image_required")
        return decode_image(data, self.max_pixels, self.max_side, self.large_decodes)

    def load(self, image: QueryImage) -> Image.Image:
        return self.decode(image).image
