"""Standard product-retrieval test sets read from their published layouts (Stanford Online Products, DeepFashion
In-shop, a class-folder tree), generated small here, and `trooply eval --dataset` run on each. With random test
weights only the bookkeeping is checked: each product's two images are the same picture, so the raw model finds
the twin first exactly when a query's own image is kept out of its ranking."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_settings
from trooply.cli import main
from trooply.errors import InvalidRequest
from trooply.tools.benchmarks import read_benchmark
from trooply.tools.evaluation import benchmark_metrics, format_report, hit_at, run_benchmark


def picture(seed: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (72, 96), tuple(int(v) for v in rng.integers(0, 256, 3)))
    image.paste(tuple(int(v) for v in rng.integers(0, 256, 3)), (10, 20, 60, 80))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def sop_tree(root):
    """Ebay_test.txt as published: `image_id class_id super_class_id path`, images under <super>_final/."""
    rows = ["image_id class_id super_class_id path"]
    for n, (product, super_class, seed) in enumerate([(11319, 1, 1), (11319, 1, 1), (11320, 1, 2), (11320, 1, 2),
                                                       (15001, 4, 3), (15001, 4, 3), (15001, 4, 3)], 1):
        name = ["bicycle", "", "", "chair"][super_class - 1]
        rows.append(f"{n} {product} {super_class} {name}_final/{product}_{n}.JPG")
        write(root / f"{name}_final/{product}_{n}.JPG", picture(seed))
    (root / "Ebay_test.txt").write_text("\n".join(rows) + "\n")
    return root


def inshop_tree(root):
    """The published archive: Eval/list_eval_partition.txt (a count, a header, rows) and Img/img/... images."""
    rows = [("img/WOMEN/Dresses/id_00000002/02_1_front.jpg", "id_00000002", "train", 9),
            ("img/WOMEN/Dresses/id_00000080/01_1_front.jpg", "id_00000080", "query", 1),
            ("img/WOMEN/Dresses/id_00000080/01_2_side.jpg", "id_00000080", "gallery", 1),
            ("img/MEN/Denim/id_00000101/03_1_front.jpg", "id_00000101", "query", 2),
            ("img/MEN/Denim/id_00000101/03_2_side.jpg", "id_00000101", "gallery", 2),
            ("img/MEN/Denim/id_00000101/03_4_full.jpg", "id_00000101", "gallery", 2),
            ("img/MEN/Tees/id_00000150/01_1_front.jpg", "id_00000150", "gallery", 3),
            ("img/MEN/Tees/id_00000199/01_1_front.jpg", "id_00000199", "query", 4)]  # nothing in the gallery
    lines = [str(len(rows)), "image_name item_id evaluation_status"]
    for name, item, status, seed in rows:
        lines.append(f"{name:60} {item} {status}")  # the published file pads the name with spaces
        write(root / "Img" / name, picture(seed))
    write(root / "Eval" / "list_eval_partition.txt", "\n".join(lines).encode())
    return root


def folder_tree(root):
    for name, seeds in {"red dress": [1, 1], "sneakers": [2, 2, 2], "lonely-lamp": [3]}.items():
        for i, seed in enumerate(seeds):
            write(root / name / f"{i}.{'png' if i % 2 else 'jpg'}", picture(seed, "PNG" if i % 2 else "JPEG"))
    write(root / "sneakers" / "notes.txt", b"not an image")
    write(root / ".thumbnails" / "x.jpg", picture(9))
    return root


def test_stanford_online_products(tmp_path):
    benchmark = read_benchmark(sop_tree(tmp_path / "Stanford_Online_Products"))
    assert benchmark.name == "Stanford Online Products" and benchmark.root == tmp_path / "Stanford_Online_Products"
    assert len(benchmark.gallery) == len(benchmark.queries) == 7
    first = benchmark.queries[0]
    assert (first.id, first.path, first.label) == ("sop-1", "bicycle_final/11319_1.JPG", "11319")
    assert benchmark.relevant(first) == {"sop-2"}  # the other image of its product, not itself
    assert benchmark.relevant(benchmark.queries[4]) == {"sop-6", "sop-7"}
    assert read_benchmark(tmp_path / "Stanford_Online_Products" / "Ebay_test.txt").describe() == benchmark.describe()


def test_inshop(tmp_path):
    benchmark = read_benchmark(inshop_tree(tmp_path / "inshop"))
    assert benchmark.name == "DeepFashion In-shop" and benchmark.root == tmp_path / "inshop" / "Img"
    assert [g.path.rsplit("/", 1)[1] for g in benchmark.gallery] == [
        "01_2_side.jpg", "03_2_side.jpg", "03_4_full.jpg", "01_1_front.jpg"]
    assert [q.label for q in benchmark.queries] == ["id_00000080", "id_00000101"]  # train rows and orphans left out
    assert benchmark.relevant(benchmark.queries[1]) == {benchmark.gallery[1].id, benchmark.gallery[2].id}
    # The list beside its images (no Eval/ and Img/ folders) reads the same.
    flat = tmp_path / "flat"
    (flat / "img").parent.mkdir(parents=True)
    (tmp_path / "inshop" / "Img" / "img").rename(flat / "img")
    (tmp_path / "inshop" / "Eval" / "list_eval_partition.txt").rename(flat / "list_eval_partition.txt")
    assert read_benchmark(flat / "list_eval_partition.txt").root == flat


def test_folder_tree(tmp_path):
    benchmark = read_benchmark(folder_tree(tmp_path / "shop"))
    assert [(i.path, i.label) for i in benchmark.gallery] == [
        ("lonely-lamp/0.jpg", "lonely-lamp"), ("red dress/0.jpg", "red dress"), ("red dress/1.png", "red dress"),
        ("sneakers/0.jpg", "sneakers"), ("sneakers/1.png", "sneakers"), ("sneakers/2.jpg", "sneakers")]
    assert [q.path for q in benchmark.queries] == [i.path for i in benchmark.gallery[1:]]  # a lone image: no query
    assert benchmark.describe()["products"] == 3


@pytest.mark.parametrize("lines, said", [
    (["image_id class path"], "line 1 should be the header 'image_id class_id super_class_id path'"),
    (["image_id class_id super_class_id path", "1 2 3 a.jpg", "2 2 3"], "line 3 has 3 fields, not 4"),
])
def test_a_malformed_list_names_the_line(tmp_path, lines, said):
    (tmp_path / "Ebay_test.txt").write_text("\n".join(lines))
    with pytest.raises(InvalidRequest, match=said):
        read_benchmark(tmp_path)


def test_unreadable_layouts_are_refused(tmp_path):
    with pytest.raises(InvalidRequest, match="does not exist"):
        read_benchmark(tmp_path / "missing")
    with pytest.raises(InvalidRequest, match="no class_name/image files"):
        read_benchmark(tmp_path)
    inshop = inshop_tree(tmp_path / "inshop")
    for image in (inshop / "Img").rglob("*.jpg"):
        image.unlink()
    with pytest.raises(InvalidRequest, match="not found under"):
        read_benchmark(inshop)


def test_recall_counts_a_query_as_found_when_any_relevant_image_is_in_the_top_k():
    assert hit_at(["a", "b", "c"], {"c", "z"}, 1) == 0.0 and hit_at(["a", "b", "c"], {"c", "z"}, 3) == 1.0
    assert benchmark_metrics(["x", "c"], {"c", "d"})["recall@10"] == 1.0


@pytest.mark.parametrize("build, queries", [(sop_tree, 7), (inshop_tree, 2), (folder_tree, 5)])
def test_eval_on_each_layout_indexes_the_gallery_and_scores_both_ways(tmp_path, build, queries):
    report = run_benchmark(make_settings(tmp_path / "unused"), build(tmp_path / "data"), concurrency=2)
    dataset = report["_dataset"]
    assert report["_catalogue"]["indexed"] == dataset["gallery"] and report["_catalogue"]["failed"] == 0
    assert report["all"]["queries"] == dataset["queries_evaluated"] == queries
    assert report["all"]["cosine"]["recall@1"] == 1.0  # the identical twin, the query's own image left out
    assert 0 <= report["all"]["pipeline"]["recall@1"] <= report["all"]["pipeline"]["recall@10"] <= 1
    assert report["_catalogue"]["images_per_s"] > 0 and report["_timing"]["pipeline"]["queries_per_s"] > 0
    assert report["_model"]["model"] == "trooply-test-tiny" and report["_model"]["dim"] == 64
    text = format_report(report)
    assert "images/s through the ingest pipeline" in text and "queries/s" in text and dataset["name"] in text


def test_eval_cli_on_a_dataset_with_a_forced_profile_and_a_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TROOPLY_DATA_DIR", str(tmp_path / "unused"))
    tree = folder_tree(tmp_path / "shop")
    assert main(["eval", "--dataset", str(tree), "--model", "trooply-test-tiny", "--pretrained", "random",
                 "--profile", "apparel", "--max-queries", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["_dataset"]["queries_evaluated"] == 3 and set(report) - {"all"} == {
        "apparel", "_dataset", "_catalogue", "_timing", "_model"}
    assert main(["eval", "--dataset", str(tree), "--catalog", str(tree / "x.jsonl")]) == 2
    assert "takes --catalog and --queries, or --dataset" in capsys.readouterr().err
