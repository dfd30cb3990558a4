"""Settings are grouped by concern, yet every one still reads its flat TROOPLY_* variable."""

import re
from pathlib import Path

import pytest

from trooply.config import Settings


def test_a_grouped_setting_reads_its_flat_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROOPLY_FETCH_CONNECT_TIMEOUT", "7")
    monkeypatch.setenv("TROOPLY_CLIP_MODEL", "ViT-B-32")
    monkeypatch.setenv("TROOPLY_RUNTIME_MAX_BATCH", "32")
    settings = Settings()
    assert (settings.fetch.connect_timeout, settings.clip.model, settings.runtime.max_batch) == (7.0, "ViT-B-32", 32)


def test_a_flat_name_in_code_sets_its_group_and_the_group_keeps_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROOPLY_FETCH_CONNECT_TIMEOUT", "7")
    settings = Settings(fetch_read_timeout=2, clip_pretrained="random")
    assert (settings.fetch.connect_timeout, settings.fetch.read_timeout) == (7.0, 2.0)
    assert settings.clip.pretrained == "random"


def test_updated_changes_one_grouped_setting_and_leaves_the_original_alone() -> None:
    settings = Settings()
    changed = settings.updated(clip_model="ViT-B-32", redis_url="redis://127.0.0.1:6379/0")
    assert (changed.clip.model, changed.redis_url) == ("ViT-B-32", "redis://127.0.0.1:6379/0")
    assert (settings.clip.model, settings.redis_url) == ("ViT-L-14", None)
    assert changed.clip.pretrained == settings.clip.pretrained


def test_every_variable_is_listed_once_and_readable() -> None:
    settings = Settings()
    variables = Settings.variables()
    assert {"TROOPLY_DATA_DIR", "TROOPLY_QDRANT_URL", "TROOPLY_MAX_IMAGE_PIXELS", "TROOPLY_DETECTOR",
            "TROOPLY_FREE_PLAN_MAX_PRODUCTS"} <= variables
    assert not any(name in variables for name in ("TROOPLY_FETCH", "TROOPLY_CLIP", "TROOPLY_LIMITS"))
    assert settings.by_variable("TROOPLY_MAX_IMAGE_PIXELS") == settings.images.max_pixels


def test_an_invalid_grouped_value_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROOPLY_RUNTIME_MAX_BATCH", "0")
    with pytest.raises(ValueError, match="TROOPLY_RUNTIME_MAX_BATCH"):
        Settings()


def test_a_group_is_read_from_its_flat_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROOPLY_FETCH", '{"connect_timeout": 9}')  # not a way in: unlisted, and ignored
    monkeypatch.setenv("TROOPLY_FETCH_READ_TIMEOUT", "4")
    settings = Settings()
    assert (settings.fetch.connect_timeout, settings.fetch.read_timeout) == (3.0, 4.0)


def test_updated_validates_what_it_changes() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="max_batch"):
        settings.updated(runtime_max_batch=0)
    with pytest.raises(ValueError, match="plan table"):
        settings.updated(free_plan_max_products=5)
    with pytest.raises(ValueError, match="no setting"):
        settings.updated(clip_modle="ViT-B-32")
    assert settings.updated(port="9000").port == 9000


def test_limits_read_as_a_person_reads_them():
    from trooply.errors import byte_size

    assert [byte_size(n) for n in (10 * 1024 * 1024, 1536, 900, 5 << 30)] == ["10 MiB", "1.5 KiB", "900 bytes",
                                                                              "5 GiB"]


README = Path(__file__).parents[2] / "README.md"


def documented_variables() -> set[str]:
    """The variables README's Configuration table lists. A row may shorten a name of the same group:
    `TROOPLY_FETCH_CONNECT_TIMEOUT` / `_READ_TIMEOUT` is TROOPLY_FETCH_READ_TIMEOUT, `…_ONNX_INPUT_SIZE` after
    `TROOPLY_DETECTOR_ONNX_PATH` is TROOPLY_DETECTOR_ONNX_INPUT_SIZE, `TROOPLY_{FREE,PRO}_PLAN_{A,B}` is four."""
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `TROOPLY_"):
            continue
        names = re.findall(r"`((?:TROOPLY|_|…)[A-Z0-9_{},…]*)`", row.split(" | ")[0] + " | " + row.split(" | ")[-1])
        group = names[0].split("_")[1]
        for name in names:
            if not name.startswith("TROOPLY"):
                name = f"TROOPLY_{group}_" + name.lstrip("_…")
            found |= expand_braces(name)
    return found


def expand_braces(name: str) -> set[str]:
    match = re.search(r"\{([^}]*)\}", name)
    if not match:
        return {name}
    return set().union(*(expand_braces(name[:match.start()] + choice + name[match.end():])
                         for choice in match.group(1).split(",")))


def test_every_variable_is_documented_in_the_readme_table_and_every_documented_one_is_read() -> None:
    documented = documented_variables()
    shortened = {"TROOPLY_FETCH_READ_TIMEOUT", "TROOPLY_DETECTOR_ONNX_INPUT_SIZE", "TROOPLY_PRO_PLAN_RATE_LIMIT"}
    assert shortened <= documented
    assert Settings.variables() - documented == set(), "settings missing from README's Configuration table"
    assert documented - Settings.variables() == set(), "README documents variables no setting reads"


def test_a_group_derives_each_variable_from_the_field_unless_the_field_names_its_own() -> None:
    fields = Settings.model_fields
    assert fields["fetch"].annotation.model_fields["deadline"].validation_alias == "TROOPLY_FETCH_DEADLINE"
    assert fields["fetch"].annotation.model_fields["max_image_bytes"].validation_alias == "TROOPLY_MAX_IMAGE_BYTES"
    assert Settings(free_plan_rate_limit=5).plan("free").rate_limit == 5
