import shutil

import pytest

from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, ProfileError, load_profiles

FAMILIES = {"apparel", "footwear", "accessories", "electronics", "displays", "audio", "optics", "home", "media",
            "beauty"}


def test_the_ten_profiles_load_with_pools_prompts_and_categories():
    profiles = load_profiles()
    assert set(profiles) == FAMILIES
    for profile in profiles.values():
        assert profile.candidate_pool == 30 and profile.prompts and profile.categories


def test_a_profile_written_before_the_keywords_signal_splits_its_clip_weight(tmp_path):
    shutil.copytree(DEFAULT_PROFILES_DIR, tmp_path / "profiles")
    path = tmp_path / "profiles" / "footwear.yaml"
    text = path.read_text().replace("keyword_weight: 0.3\n", "").replace("clip: 0.28", "clip: 0.4")
    path.write_text(text.replace("  keywords: 0.12\n", ""))
    weights = load_profiles(tmp_path / "profiles")["footwear"].weights
    assert (weights.clip, weights.keywords) == pytest.approx((0.28, 0.12))


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("clip: 0.28", "clip: 0.9"),
     "footwear.yaml: field 'weights': Value error, weights must sum to 1"),
    (lambda text: text.replace("keyword_weight: 0.3", "keyword_weight: 0.9"),
     "footwear.yaml: field 'weights': Value error, keywords must be keyword_weight x (clip + keywords) = 0.360"),
    (lambda text: text.replace("keyword_weight: 0.3", "keyword_weight: 1.5"), "footwear.yaml: field 'keyword_weight'"),
    (lambda text: text.replace("candidate_pool: 30", "candidate_pool: many"), "footwear.yaml: field 'candidate_pool'"),
    (lambda text: text.replace("prompts:", "promts:"), "footwear.yaml: field 'prompts'"),
    (lambda text: text.replace("name: footwear", "name: shoes"), "footwear.yaml: field 'name'"),
    (lambda text: text + "  - \"dresses\"\n", "field 'categories': 'dresses' is already mapped by apparel.yaml"),
    (lambda text: text + "weights: [", "footwear.yaml: not valid YAML"),
])
def test_a_malformed_profile_fails_naming_the_file_and_the_field(tmp_path, edit, message):
    shutil.copytree(DEFAULT_PROFILES_DIR, tmp_path / "profiles")
    path = tmp_path / "profiles" / "footwear.yaml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ProfileError) as error:
        load_profiles(tmp_path / "profiles")
    assert message in str(error.value)


def test_a_service_with_a_malformed_profile_does_not_start(tmp_path):
    from tests.conftest import make_settings
    from trooply.container import Container

    shutil.copytree(DEFAULT_PROFILES_DIR, tmp_path / "profiles")
    (tmp_path / "profiles" / "audio.yaml").write_text("name: audio\n")
    with pytest.raises(ProfileError, match="audio.yaml: field 'weights'"):
        Container(make_settings(tmp_path, profiles_dir=tmp_path / "profiles"))


def test_profiles_carry_query_words_and_the_gate_relaxation_setting(tmp_path):
    shutil.copytree(DEFAULT_PROFILES_DIR, tmp_path / "profiles")
    path = tmp_path / "profiles" / "optics.yaml"
    path.write_text(path.read_text().replace("gates:\n", "gates:\n  relax_when_empty: false\n"))
    profiles = load_profiles(tmp_path / "profiles")
    assert profiles["optics"].gates.relax_when_empty is False and profiles["footwear"].gates.relax_when_empty
    assert "sneaker" in profiles["footwear"].query_words
    shoes = tmp_path / "profiles" / "footwear.yaml"
    shoes.write_text(shoes.read_text().replace('  - "sneaker"\n', '  - "tote"\n'))
    with pytest.raises(ProfileError, match="field 'query_words': 'tote' is already mapped by accessories.yaml"):
        load_profiles(tmp_path / "profiles")
