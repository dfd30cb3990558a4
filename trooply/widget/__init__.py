"""The storefront widget: one script and its stylesheet, static files inside the package (no build step), served
by the API at /widget.js and /widget.css and, immutable, under a content-hash version."""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {"widget.js": "text/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class WidgetAsset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class WidgetBundle:
    version: str  # the first hex digits of the files' hash: a new release is a new URL
    assets: dict[str, WidgetAsset]


@cache
def widget_bundle() -> WidgetBundle:
    assets, digest = {}, hashlib.sha256()
    for name, media_type in MEDIA_TYPES.items():
        body = (STATIC_DIR / name).read_bytes()
        digest.update(body)
        assets[name] = WidgetAsset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return WidgetBundle(digest.hexdigest()[:12], assets)
