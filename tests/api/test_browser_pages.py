"""What a browser opens on the service: `/` leads to the portal, and /docs works without internet access."""

import logging
import re


def test_the_root_sends_a_browser_to_the_portal(client):
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code in (302, 307) and answer.headers["location"] == "/portal/"
    assert "text/html" in client.get("/").headers["content-type"]


def test_docs_load_every_asset_from_the_service(client):
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/") for source in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "/openapi.json" in page.text


def test_portal_files_are_logged_under_the_portal(client, caplog):
    with caplog.at_level(logging.INFO, logger="trooply.access"):
        client.get("/portal/js/api.js")
        client.get("/v1/nothing-here")
    paths = [record.path for record in caplog.records if record.name == "trooply.access"]
    assert paths == ["/portal/*", "unmatched"]
