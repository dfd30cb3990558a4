"""The CLI's tenant commands run the admin API's service against this installation's database."""

import json

import pytest

from trooply.cli import main


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TROOPLY_DATA_DIR", str(tmp_path))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_tenants_from_creation_to_deletion(cli):
    code, out, _ = cli("tenants", "create", "Acme", "--plan", "pro", "--json")
    created = json.loads(out)
    assert code == 0 and set(created) == {"tenant_id", "secret_key", "publishable_key"}
    tenant_id = created["tenant_id"]

    code, out, _ = cli("tenants", "list")
    assert code == 0 and [json.loads(line)["tenant_id"] for line in out.splitlines()] == [tenant_id]
    assert json.loads(cli("tenants", "show", tenant_id)[1])["limits"]["monthly_item_calls"] == 100_000
    assert json.loads(cli("tenants", "update", tenant_id, "--plan", "free")[1])["plan"] == "free"
    assert cli("tenants", "update", tenant_id)[0] == 2  # nothing to change

    code, out, _ = cli("tenants", "delete", tenant_id)
    assert code == 0 and "keys are revoked" in out
    assert cli("tenants", "list")[1] == ""
    code, _, err = cli("tenants", "show", tenant_id)
    assert code == 1 and "tenant_not_found" in err
    assert "tenant_not_found" in cli("keys", "rotate", tenant_id)[2]


def test_an_unknown_plan_is_refused(cli):
    code, _, err = cli("tenants", "create", "Acme", "--plan", "gold")
    assert code == 1 and "unknown_plan" in err and "free, pro" in err


def test_storefront_origins_are_set_and_cleared(cli):
    tenant_id = json.loads(cli("tenants", "create", "Acme", "--json")[1])["tenant_id"]
    code, out, _ = cli("tenants", "update", tenant_id, "--allowed-origin", "https://Shop.example/",
                       "--allowed-origin", "http://localhost:3000")
    assert code == 0 and json.loads(out)["allowed_origins"] == ["http://localhost:3000", "https://shop.example"]
    assert json.loads(cli("tenants", "show", tenant_id)[1])["allowed_origins"] == ["http://localhost:3000",
                                                                                 "https://shop.example"]
    code, _, err = cli("tenants", "update", tenant_id, "--allowed-origin", "https://*.shop.example")
    assert code == 1 and "invalid_origin" in err
    assert json.loads(cli("tenants", "update", tenant_id, "--no-allowed-origins")[1])["allowed_origins"] == []
