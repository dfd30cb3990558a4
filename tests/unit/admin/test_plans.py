"""Plans are data: TROOPLY_PLANS replaces the table, the older flat variables override single figures."""

import pytest
from pydantic import ValidationError

from trooply.config import Settings, UnknownPlan


def test_the_default_plans():
    settings = Settings()
    assert settings.plan("free").model_dump() == {"max_products": 1000, "monthly_item_calls": 1000, "rate_limit": 20,
                                                  "max_images_per_product": 3}
    assert settings.plan("pro").model_dump() == {"max_products": None, "monthly_item_calls": 100_000,
                                                 "rate_limit": 200, "max_images_per_product": 10}
    assert (settings.images_per_product("free"), settings.images_per_product("pro")) == (3, 10)


def test_plans_come_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("TROOPLY_PLANS", '{"free": {"max_products": 10, "rate_limit": 5},'
                                        ' "enterprise": {"rate_limit": 0}}')
    monkeypatch.setenv("TROOPLY_FREE_PLAN_MONTHLY_ITEM_CALLS", "50")
    settings = Settings()
    assert settings.plan("free").model_dump() == {"max_products": 10, "monthly_item_calls": 50, "rate_limit": 5,
                                                  "max_images_per_product": None}
    assert settings.plan("enterprise").max_products is None
    # A plan without an image cap has TROOPLY_MAX_IMAGES_PER_PRODUCT's.
    assert settings.images_per_product("enterprise") == settings.ingest.max_images_per_product == 10
    with pytest.raises(UnknownPlan) as refused:
        settings.plan("pro")
    assert refused.value.code == "unknown_plan" and refused.value.status == 422


def test_a_flat_override_of_a_plan_the_table_lacks_fails_start_up(monkeypatch):
    monkeypatch.setenv("TROOPLY_PLANS", '{"basic": {"rate_limit": 1}}')
    with pytest.raises(ValidationError, match="has no 'pro' plan"):
        Settings(pro_plan_max_products=5)


@pytest.mark.parametrize("plans", ['{}', '{"free": {"rate_limit": -1}}', '{"free": {"rate_limit": 1, "seats": 3}}'])
def test_a_bad_plan_table_fails_start_up(monkeypatch, plans):
    monkeypatch.setenv("TROOPLY_PLANS", plans)
    with pytest.raises(ValidationError):
        Settings()


def test_the_admin_token_is_off_when_empty_and_must_be_long():
    assert Settings(admin_token="").admin_token is None
    with pytest.raises(ValidationError):
        Settings(admin_token="short")
