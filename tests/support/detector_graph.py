"""An ONNX detector graph the tests make: it ignores its pixels and answers fixed detections."""

import numpy as np
import onnx
from onnx import TensorProto, helper


def tiny_detector_graph(path, boxes, scores, labels, size=64) -> None:
    """A graph that ignores its pixels and answers fixed detections: enough to test the adapter's contract."""
    constant = lambda name, dtype, values: helper.make_node(  # noqa: E731
        "Constant", [], [name],
        value=helper.make_tensor(name + "_v", dtype, np.shape(values), np.ravel(values).tolist()))
    graph = helper.make_graph(
        [constant("boxes", TensorProto.FLOAT, boxes), constant("scores", TensorProto.FLOAT, scores),
         constant("labels", TensorProto.INT64, labels)],
        "tiny-detector", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [len(scores), 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [len(scores)]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [len(scores)])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
