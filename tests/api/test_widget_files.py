"""The widget's files: served from the package, cacheable (briefly at /widget.js, for a year under a version),
revalidated by ETag, and the same for any origin (a script tag needs no CORS)."""

from fastapi.testclient import TestClient

from trooply.widget import STATIC_DIR


def test_the_widget_and_its_stylesheet_are_served_with_cache_headers(client: TestClient) -> None:
    script = client.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.content == (STATIC_DIR / "widget.js").read_bytes()
    assert script.headers["cache-control"] == "public, max-age=300"
    assert script.headers["x-content-type-options"] == "nosniff"
    style = client.get("/widget.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    again = client.get("/widget.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_versioned_url_is_immutable_and_an_old_version_is_gone(client: TestClient) -> None:
    version = client.get("/widget.js").headers["x-trooply-widget-version"]
    pinned = client.get(f"/widget/{version}/widget.js")
    assert pinned.status_code == 200 and "immutable" in pinned.headers["cache-control"]
    assert client.get(f"/widget/{version}/widget.css").status_code == 200
    assert client.get("/widget/000000000000/widget.js").status_code == 404
    assert client.get("/widget.txt").status_code == 404  # nothing else is served beside them
