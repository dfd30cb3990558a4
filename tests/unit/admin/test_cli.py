"""The CLI's tenant commands run the admin API's service against this installation's database."""

import argparse
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
    assert json.loads(out)["storage_tier"] == "shared"  # as the admin API says, read without the index
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


def test_env_output_sets_the_shell_variables_and_one_off_commands_are_quiet(cli):
    code, out, err = cli("tenants", "create", "Acme", "--env")
    assert code == 0
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert set(values) == {"TENANT_ID", "SK", "PK"}
    assert values["SK"].startswith("sk_") and values["PK"].startswith("pk_")
    assert "alembic" not in err  # the migration's INFO lines only with -v
    _, _, err = cli("-v", "tenants", "list")
    assert "INFO alembic" in err
    code, out, err = cli("keys", "rotate", values["TENANT_ID"], "--env")
    assert code == 0 and out.startswith("TENANT_ID=") and "revoked" in err


def _every_parser(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _every_parser(sub)


def test_every_command_and_argument_has_help():
    from trooply.cli import _parser

    missing = [f"{parser.prog}: {action.dest}" for parser in _every_parser(_parser()) for action in parser._actions
               if not action.help and not isinstance(action, argparse._SubParsersAction)]
    assert missing == []
    commands = _parser()._subparsers._group_actions[0]  # the COMMAND list, as `trooply --help` shows it
    assert [choice.dest for choice in commands._choices_actions] == [
        "serve", "worker", "beat", "migrate", "tenants", "keys", "eval", "import", "feeds", "models", "reindex",
        "duplicates"]
    assert all(choice.help for choice in commands._choices_actions)
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


def test_a_language_set_by_the_cli_is_left_to_the_server_to_re_tokenise(cli):
    tenant_id = json.loads(cli("tenants", "create", "Laden", "--json")[1])["tenant_id"]
    code, out, _ = cli("tenants", "update", tenant_id, "--language", "german")
    assert code == 0 and json.loads(out)["language"] == "german"
    assert json.loads(out)["words_language"] == "english"  # the running server's (or next start's) sweep does it
    code, _, err = cli("tenants", "update", tenant_id, "--language", "klingon")
    assert code == 2 and "german" in err  # the error lists what is accepted
    assert json.loads(cli("tenants", "show", tenant_id)[1])["language"] == "german"
