import json
import math

import pytest

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from trooply.errors import InvalidRequest
from trooply.tools.evaluation import (
    format_report,
    metrics,
    ndcg_at,
    recall_at,
    run_evaluation,
)


def test_metric_arithmetic_on_a_hand_made_case():
    ranked, relevant = ["a", "b", "c", "d"], {"b", "d"}
    assert recall_at(ranked, relevant, 1) == 0.0
    assert recall_at(ranked, relevant, 2) == 0.5
    assert recall_at(ranked, relevant, 10) == 1.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at(ranked, relevant, 10) == pytest.approx(dcg / ideal) == pytest.approx(0.6509, abs=1e-4)
    assert metrics(["x", "b"], {"x"}) == {"recall@1": 1.0, "recall@10": 1.0, "ndcg@10": 1.0}
    assert ndcg_at(["z"] * 10 + ["x"], {"x"}, 10) == 0.0


def test_eval_indexes_a_catalogue_and_reports_both_ways_per_profile(tmp_path):
    with ImageServer() as server:
        catalog, queries = [], []
        for i in range(6):
            server.add_image(f"/{i}.png", two_halves_png(64, 64, (i * 40, 20, 90), (30, 200 - i * 30, 10)))
            catalog.append({"id": f"p{i}", "image_url": server.url(f"/{i}.png"), "category": "shoes"})
            queries.append({"image_url": server.url(f"/{i}.png"), "relevant": [f"p{i}"], "profile": "footwear"})
        queries.append({"query": "a red shoe", "relevant": ["p1", "p2"]})
        (tmp_path / "catalog.jsonl").write_text("\n".join(map(json.dumps, catalog)))
        (tmp_path / "queries.jsonl").write_text("\n".join(map(json.dumps, queries)))
        report = run_evaluation(make_settings(tmp_path / "unused"), tmp_path / "catalog.jsonl",
                                tmp_path / "queries.jsonl")
    assert (report["_catalogue"]["indexed"], report["_catalogue"]["failed"]) == (6, 0)
    assert report["_catalogue"]["images_per_s"] > 0 and report["_timing"]["cosine"]["queries_per_s"] > 0
    assert report["all"]["queries"] == 7 and report["footwear"]["queries"] >= 6
    # An image query for a product's own picture finds that product first by cosine: 6 of 7 queries.
    assert report["all"]["cosine"]["recall@1"] >= 6 / 7
    for way in ("cosine", "pipeline"):
        assert set(report["all"][way]) == {"recall@1", "recall@10", "ndcg@10"}
        assert all(0 <= v <= 1 for v in report["all"][way].values())
    text = format_report(report)
    assert "catalogue: 6 indexed" in text and "pipeline" in text
    assert "_words" not in report  # no product text: nothing for words to find


def test_eval_of_a_catalogue_with_text_reports_words_pictures_and_hybrid(tmp_path):
    titles = ["Nike Air Max 90", "Samsonite cabin case", "Merino crew jumper", "Red leather tote"]
    with ImageServer() as server:
        catalog = []
        for i, title in enumerate(titles):
            server.add_image(f"/{i}.png", two_halves_png(64, 64, (i * 60, 20, 90), (30, 200 - i * 40, 10)))
            catalog.append({"id": f"p{i}", "image_url": server.url(f"/{i}.png"), "title": title})
        queries = [{"query": "air max 90", "relevant": ["p0"]}, {"query": "samsonite", "relevant": ["p1"]},
                   {"query": "merino jumper", "relevant": ["p2"]}, {"image_url": server.url("/3.png"),
                                                                    "relevant": ["p3"]}]
        (tmp_path / "catalog.jsonl").write_text("\n".join(map(json.dumps, catalog)))
        (tmp_path / "queries.jsonl").write_text("\n".join(map(json.dumps, queries)))
        report = run_evaluation(make_settings(tmp_path / "unused"), tmp_path / "catalog.jsonl",
                                tmp_path / "queries.jsonl")
    words = report["_words"]
    assert words["queries"] == 3  # the text queries
    assert words["words"]["recall@1"] == 1.0  # each names its product's title
    assert set(words) == {"queries", "words", "pictures", "hybrid"}
    assert all(0 <= words[way]["recall@1"] <= 1 for way in ("pictures", "hybrid"))
    assert "text queries" in format_report(report)


def test_eval_refuses_unlabelled_queries(tmp_path):
    (tmp_path / "c.jsonl").write_text("")
    (tmp_path / "q.jsonl").write_text(json.dumps({"query": "x"}))
    with pytest.raises(InvalidRequest, match="line 1"):
        run_evaluation(make_settings(tmp_path), tmp_path / "c.jsonl", tmp_path / "q.jsonl")
