"""The merchant portal: static files (plain ES modules, no build step) that the API process serves at /portal.

It talks to the public /v1 API with the merchant's secret key, which it keeps in sessionStorage only.
"""

from pathlib import Path

from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page holds a secret key: nothing but our own scripts runs, no frame may embed it, no URL leaks through a
# Referer. Product images live on the merchants' hosts, hence any http(s) image source.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data: blob: http: https:; media-src 'self' blob:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (cheap: ETags), so an upgraded server never runs with an old script.
    "Cache-Control": "no-cache",
}


class PortalFiles(StaticFiles):
    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def portal_app() -> PortalFiles:
    return PortalFiles(directory=STATIC_DIR, html=True)
