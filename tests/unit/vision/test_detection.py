"""Detection geometry, NMS and the ONNX adapter, on images and a graph the tests make (no class accuracy is claimed)."""

import math

import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image, ImageDraw

from tests.support.detector_graph import tiny_detector_graph
from trooply.vision.detection import (
    CLASS_NAMES,
    Detection,
    OnnxDetector,
    annotate,
    area_ratio,
    center_distance_ratio,
    clip_box,
    finalise,
    iou,
    non_max_suppression,
    prominence,
    region_proposals,
)


def composite() -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    image = Image.new("RGB", (640, 480), (236, 236, 230))
    draw = ImageDraw.Draw(image)
    objects = [(40, 60, 220, 300), (380, 220, 600, 440), (300, 40, 360, 120)]
    draw.rectangle(objects[0], fill=(200, 25, 25))
    draw.ellipse(objects[1], fill=(25, 40, 190))
    draw.rectangle(objects[2], fill=(20, 150, 40))
    return image, objects


def test_class_ids_and_names_are_stable():
    assert CLASS_NAMES == {0: "Bag", 1: "Cap", 2: "Down-Clothing", 3: "Glasses", 4: "Jewelry", 5: "Others",
                           6: "Shoes", 7: "Sock", 8: "Up-Clothing", 9: "Watch"}


def test_area_and_centre_distance_ratios_match_hand_computation():
    assert area_ratio((0, 0, 100, 50), 200, 100) == 0.25
    assert center_distance_ratio((0, 0, 100, 50), 200, 100) == pytest.approx(
        math.hypot(50, 25) / (math.hypot(200, 100) / 2))
    assert center_distance_ratio((50, 25, 150, 75), 200, 100) == 0.0
    assert center_distance_ratio((0, 0, 0.0001, 0.0001), 200, 100) == pytest.approx(1.0, abs=1e-5)


def test_nms_removes_same_class_duplicates_and_keeps_other_classes():
    a = Detection(0, 0.9, (10, 10, 110, 110))
    duplicate = Detection(0, 0.8, (12, 12, 112, 112))
    other_class = Detection(6, 0.7, (12, 12, 112, 112))
    apart = Detection(0, 0.6, (300, 300, 400, 400))
    assert iou(a.box, duplicate.box) > 0.9
    assert non_max_suppression([duplicate, apart, a, other_class]) == [a, other_class, apart]
    assert finalise([duplicate, apart, a, other_class], top_k=2, classes=None) == [a, other_class]
    assert finalise([duplicate, apart, a, other_class], top_k=10, classes={6}) == [other_class]


def test_prominence_prefers_confident_large_central_items():
    centred = Detection(0, 0.8, (200, 150, 440, 330))
    corner = Detection(0, 0.8, (0, 0, 240, 180))
    small = Detection(0, 0.8, (300, 220, 340, 260))
    assert prominence(centred, 640, 480) > prominence(corner, 640, 480)
    assert prominence(centred, 640, 480) > prominence(small, 640, 480)


def test_region_proposals_stay_inside_and_find_each_object():
    image, objects = composite()
    boxes = region_proposals(image, limit=48)
    assert boxes[0] == (0.0, 0.0, 640.0, 480.0) and len(boxes) <= 48
    assert all(0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 for x1, y1, x2, y2 in boxes)
    for target in objects:
        assert max(iou(box, target) for box in boxes) > 0.8, target


@pytest.mark.parametrize("size", [(39000, 1), (1, 39000), (320, 1), (1, 7), (2, 2), (1, 1)])
def test_region_proposals_on_degenerate_shapes_stay_inside_the_image(size):
    width, height = size
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (width // 2, height // 2, width, height))
    boxes = region_proposals(image, limit=48)
    assert boxes and boxes[0] == (0.0, 0.0, float(width), float(height))
    assert all(0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height for x1, y1, x2, y2 in boxes)
    assert all(area_ratio(box, width, height) <= 1.0 for box in boxes)


def test_clip_box_keeps_the_whole_pixels_inside_and_drops_boxes_with_none_or_not_a_number():
    assert clip_box((-5, -5, 50, 120), 40, 100) == (0.0, 0.0, 40.0, 100.0)
    assert clip_box((10, 10, 20, 20), 40, 100) == (10.0, 10.0, 20.0, 20.0)
    assert clip_box((0.375, 1.7, 0.4375, 2.0000000001), 2, 2) == (0.0, 1.0, 1.0, 2.0)
    assert clip_box((50, 10, 60, 20), 40, 100) is None
    assert clip_box((10, 10, 10, 20), 40, 100) is None
    assert clip_box((math.nan, 10, 20, 20), 40, 100) is None
    assert clip_box((0, 0, math.inf, 20), 40, 100) is None


def test_annotated_image_keeps_the_size_and_draws_the_boxes():
    image, _ = composite()
    drawn = annotate(image, [Detection(0, 0.9, (40, 60, 220, 300))])
    assert drawn.size == image.size
    assert drawn.getpixel((40, 150)) == (255, 40, 40) and image.getpixel((40, 150)) != (255, 40, 40)


def test_onnx_detector_scales_boxes_back_and_feeds_the_same_nms(tmp_path):
    path = tmp_path / "detector.onnx"
    tiny_detector_graph(path, boxes=[[8, 8, 40, 40], [9, 9, 41, 41], [0, 0, 20, 60], [0, 0, 70, 70]],
                        scores=[0.9, 0.8, 0.7, 0.6], labels=[0, 0, 6, 42])
    detector = OnnxDetector.load(path)
    candidates, _ = detector.detect(Image.new("RGB", (128, 256)))
    assert [d.class_id for d in candidates] == [0, 0, 6], "an unknown label (42) is dropped"
    assert candidates[0].box == (16.0, 32.0, 80.0, 160.0)  # x scaled by 128/64, y by 256/64
    assert finalise(candidates, 10, None) == [candidates[0], candidates[2]]


def test_onnx_detector_clips_boxes_to_the_image_and_drops_those_outside_or_not_a_number(tmp_path):
    path = tmp_path / "detector.onnx"
    tiny_detector_graph(path, boxes=[[-8, -8, 80, 80], [70, 70, 90, 90], [float("nan"), 0, 8, 8], [8, 8, 16, 16]],
                        scores=[0.9, 0.8, 0.7, float("nan")], labels=[0, 1, 2, 3])
    for size in [(128, 256), (39000, 1), (1, 39000), (2, 2)]:
        candidates, _ = OnnxDetector.load(path).detect(Image.new("RGB", size))
        assert [d.class_id for d in candidates] == [0], size
        assert candidates[0].box == (0.0, 0.0, float(size[0]), float(size[1]))


def test_onnx_detector_refuses_a_graph_without_the_contracted_outputs(tmp_path):
    path = tmp_path / "wrong.onnx"
    node = helper.make_node("Identity", ["images"], ["out"])
    graph = helper.make_graph([node], "wrong",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="boxes, scores and labels"):
        OnnxDetector.load(path)
