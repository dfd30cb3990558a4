"""The analytics endpoints through the app: secret key only, the 422s that name their parameter, text queries
counted from real searches, and none kept when TROOPLY_ANALYTICS_QUERY_TEXT is off."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app
from trooply.search.models import SearchLog


def test_a_text_search_is_counted_and_its_query_listed(client: TestClient) -> None:
    tenant = new_tenant(client)
    for query in ("Red  Sneaker", "red sneaker", "blue bag"):
        searched = client.post("/v1/search/text", json={"query": query}, headers=auth(tenant.publishable_key))
        assert searched.status_code == 200
    client.app.state.container.search.log_writer.flush()
    overview = client.get("/v1/analytics/overview", headers=auth(tenant.secret_key))
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert {"from", "to", "interval", "totals", "series", "by_mode", "by_profile"} <= set(body)
    assert body["totals"]["searches"] == 3 and body["totals"]["zero_result_rate"] == 1.0  # an empty catalogue
    assert body["by_mode"]["text"]["searches"] == 3
    queries = client.get("/v1/analytics/queries?sort=no_results", headers=auth(tenant.secret_key)).json()
    assert [(q["query"], q["searches"]) for q in queries["queries"]] == [("red sneaker", 2), ("blue bag", 1)]
    assert client.get("/v1/analytics/products", headers=auth(tenant.secret_key)).json()["products"] == []
    other = new_tenant(client, "other")
    assert client.get("/v1/analytics/overview", headers=auth(other.secret_key)).json()["totals"]["searches"] == 0


def test_bad_parameters_are_422_naming_the_parameter(client: TestClient) -> None:
    tenant = new_tenant(client)
    for path, parameter in (("/v1/analytics/overview?from=last-week", "from"),
                            ("/v1/analytics/overview?to=2026-02-30", "to"),
                            ("/v1/analytics/overview?from=2026-12-02&to=2026-12-01", "to"),
                            ("/v1/analytics/overview?from=2020-01-01&to=2026-12-01", "from"),
                            ("/v1/analytics/overview?interval=fortnight", "interval"),
                            ("/v1/analytics/queries?sort=popular", "sort"),
                            ("/v1/analytics/products?sort=views", "sort")):
        answer = client.get(path, headers=auth(tenant.secret_key))
        assert answer.status_code == 422, path
        assert answer.json()["error"]["details"] == {"parameter": parameter}, path
    assert client.get("/v1/analytics/queries?limit=0", headers=auth(tenant.secret_key)).status_code == 422
    assert client.get("/v1/analytics/overview", headers=auth(tenant.publishable_key)).status_code == 403


def test_query_text_is_not_kept_when_turned_off(tmp_path) -> None:
    with TestClient(create_app(make_settings(tmp_path, analytics_query_text=False))) as client:
        tenant = new_tenant(client)
        client.post("/v1/search/text", json={"query": "secret gift"}, headers=auth(tenant.publishable_key))
        container = client.app.state.container
        container.search.log_writer.flush()
        with container.db.session() as session:
            assert list(session.scalars(select(SearchLog.query))) == [None]
        overview = client.get("/v1/analytics/overview", headers=auth(tenant.secret_key)).json()
        assert overview["totals"]["searches"] == 1  # still counted, without its words
        assert client.get("/v1/analytics/queries", headers=auth(tenant.secret_key)).json()["queries"] == []
