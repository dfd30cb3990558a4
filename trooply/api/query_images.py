"""The query image a request names (a URL or an upload), with its bytes fetched on the fetch pool."""

import asyncio

from trooply.errors import InvalidRequest, TrooplyError
from trooply.search.schemas import ImageQuery
from trooply.vision.query_fetch import QueryImageFetcher
from trooply.vision.query_image import QueryImage


def one_image(options: ImageQuery, files: list[bytes]) -> QueryImage:
    if len(files) > 1 or (files and options.image_url):
        raise InvalidRequest("send exactly one image: `image_url` or one uploaded `file`", code="image_required")
    return QueryImage(url=options.image_url, data=files[0] if files else None)


async def fetched(fetcher: QueryImageFetcher, tenant_id: str, image: QueryImage) -> QueryImage:
    """The image with its bytes: a URL is fetched on the fetch pool, so a slow host holds no request thread."""
    if image.data is not None or image.url is None:
        return image
    return QueryImage(url=image.url, data=await fetcher.fetch(tenant_id, image.url))


async def fetched_all(fetcher: QueryImageFetcher, tenant_id: str, images: list[QueryImage]) -> list[QueryImage]:
    async def one(position: int, image: QueryImage) -> QueryImage:
        try:
            return await fetched(fetcher, tenant_id, image)
        except TrooplyError as error:
            raise error.for_item(f"image {position}", position) from error

    return list(await asyncio.gather(*(one(position, image) for position, image in enumerate(images))))
