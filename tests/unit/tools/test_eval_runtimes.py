"""`trooply eval --runtime onnx-int8`: the same catalogue and queries with PyTorch and with the other runtime."""

import json
from functools import partial

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from trooply.tools.evaluation import agreement, compare_runtimes, format_comparison, run_evaluation


def test_eval_compares_a_runtime_with_pytorch_on_the_same_catalogue(tmp_path):
    with ImageServer() as server:
        catalog, queries = [], []
        for i in range(4):
            server.add_image(f"/{i}.png", two_halves_png(64, 64, (i * 60, 20, 90), (30, 200 - i * 40, 10)))
            catalog.append({"id": f"p{i}", "image_url": server.url(f"/{i}.png")})
            queries.append({"image_url": server.url(f"/{i}.png"), "relevant": [f"p{i}"]})
        queries.append({"query": "a red shoe", "relevant": ["p1"]})
        (tmp_path / "catalog.jsonl").write_text("\n".join(map(json.dumps, catalog)))
        (tmp_path / "queries.jsonl").write_text("\n".join(map(json.dumps, queries)))
        evaluate = partial(run_evaluation, catalog=tmp_path / "catalog.jsonl", queries=tmp_path / "queries.jsonl")
        reports = compare_runtimes(evaluate, make_settings(tmp_path / "data"), "onnx-int8")

    assert list(reports) == ["torch", "onnx-int8"]
    torch_model, int8_model = reports["torch"]["_model"], reports["onnx-int8"]["_model"]
    assert (torch_model["runtime"]["runtime"], torch_model["precision"]) == ("torch", "fp32")
    assert (int8_model["runtime"]["runtime"], int8_model["precision"]) == ("onnx", "int8")
    assert int8_model["runtime"]["probe_min_cosine"] >= 0.99
    # The export is kept in the real data dir (the evaluation's own is thrown away): the next run reuses it.
    assert int8_model["runtime"]["folder"].startswith(str(tmp_path / "data" / "onnx"))
    for report in reports.values():
        assert report["_catalogue"]["indexed"] == 4 and report["all"]["queries"] == 5
    # Four products: every top 10 holds all of them, whatever the runtime.
    assert reports["onnx-int8"]["_agreement"]["cosine"]["overlap@10"] == 1.0
    assert all("_ranked" not in report for report in reports.values())
    text = format_comparison(reports)
    assert "top 10 against torch (no labels needed): cosine 100.0% shared, same first result" in text
    assert "== torch ==" in text and "== onnx-int8 ==" in text and "onnx-int8 against torch" in text
    assert "onnx int8" in text  # the model line names the runtime that served


def test_agreement_is_the_share_of_the_top_k_and_of_first_results_in_common():
    base = {"cosine": [["a", "b", "c", "d"], ["x"], []], "pipeline": [["a"], ["b"], ["c"]]}
    other = {"cosine": [["b", "a", "e", "f"], ["x"], []], "pipeline": [["a"], ["c"], ["c"]]}
    found = agreement(base, other)
    assert found["cosine"]["overlap@10"] == (0.5 + 1.0 + 1.0) / 3
    assert found["cosine"]["same_first"] == 2 / 3  # "a" then "b" differ; two empty lists agree
    assert found["pipeline"] == {"overlap@10": 2 / 3, "same_first": 2 / 3}
