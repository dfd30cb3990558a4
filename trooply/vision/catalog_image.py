"""A catalogue image as ingest, the colour refresh and the model migration's re-encode read it: the safe fetch,
then the decode under the image settings' caps (pixels, decoded side, large decodes at once)."""

from trooply.config import ImageSettings
from trooply.vision.decode import DecodedImage, decode_image
from trooply.vision.fetch import ImageFetcher


def fetch_catalogue_image(fetcher: ImageFetcher, images: ImageSettings, url: str) -> DecodedImage:
    fetched = fetcher.fetch(url)
    return decode_image(fetched.data, images.max_pixels, images.decode_max_side, images.max_concurrent_large_decodes)
