"""The storefront widget's files: /widget.js and /widget.css (cached briefly, revalidated by ETag) and
/widget/{version}/… (cached for a year: a release changes the version)."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from trooply.errors import NotFound
from trooply.widget import WidgetAsset, widget_bundle

router = APIRouter(tags=["widget"], include_in_schema=False)
LATEST_CACHE = "public, max-age=300"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
Version = Annotated[str, Path(max_length=40)]


def _answer(request: Request, asset: WidgetAsset, cache_control: str, version: str) -> Response:
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "X-Content-Type-Options": "nosniff",
               "X-Trooply-Widget-Version": version}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _latest(request: Request, name: str) -> Response:
    bundle = widget_bundle()
    return _answer(request, bundle.assets[name], LATEST_CACHE, bundle.version)


def _versioned(request: Request, version: str, name: str) -> Response:
    bundle = widget_bundle()
    if version != bundle.version:
        raise NotFound(f"no widget version {version!r}; the current one is {bundle.version}", code="not_found")
    return _answer(request, bundle.assets[name], VERSIONED_CACHE, bundle.version)


@router.get("/widget.js")
def script(request: Request) -> Response:
    return _latest(request, "widget.js")


@router.get("/widget.css")
def stylesheet(request: Request) -> Response:
    return _latest(request, "widget.css")


@router.get("/widget/{version}/widget.js")
def versioned_script(version: Version, request: Request) -> Response:
    return _versioned(request, version, "widget.js")


@router.get("/widget/{version}/widget.css")
def versioned_stylesheet(version: Version, request: Request) -> Response:
    return _versioned(request, version, "widget.css")
