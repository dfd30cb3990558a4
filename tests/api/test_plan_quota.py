"""Plan quotas: the product that would exceed the plan is refused; nothing accepted is touched."""

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app
from trooply.config import Settings


def products(ids):
    return {"products": [{"id": f"p{i}", "image_url": f"http://127.0.0.1:9/{i}.png"} for i in ids]}


def test_free_plan_holds_1000_products_by_default():
    assert Settings().plan("free").max_products == 1000
    assert Settings().plan("pro").max_products is None


def test_products_beyond_the_plan_are_refused_one_by_one(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, free_plan_max_products=5))) as client:
        free, pro = new_tenant(client, "small"), new_tenant(client, "big", plan="pro")
        sk = auth(free.secret_key)
        first = client.post("/v1/products", json=products(range(3)), headers=sk).json()
        assert first["accepted"] == 3

        second = client.post("/v1/products", json=products(range(1, 6)), headers=sk).json()
        statuses = {p["id"]: (p["status"], (p.get("error") or {}).get("code")) for p in second["products"]}
        # p1, p2 already held (updates are free); p3, p4 fill the plan; p5 would exceed it.
        assert statuses == {"p1": ("pending", None), "p2": ("pending", None), "p3": ("pending", None),
                            "p4": ("pending", None), "p5": ("rejected", "quota_exceeded")}

        full = client.post("/v1/products", json=products([9]), headers=sk)
        assert full.status_code == 403 and full.json()["error"]["code"] == "quota_exceeded"
        held = client.get("/v1/products", headers=sk).json()["products"]
        assert sorted(p["id"] for p in held) == ["p0", "p1", "p2", "p3", "p4"]

        assert client.post("/v1/products", json=products(range(10)),
                           headers=auth(pro.secret_key)).json()["accepted"] == 10
