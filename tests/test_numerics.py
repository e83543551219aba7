"""edgecnn.numerics: per-layer error of int8 against float, on a trained tiny model, both formats.

The independent figures here run the files straight through LiteRT and ONNX Runtime and
compute the SQNR with numpy; they call nothing of edgecnn.numerics or edgecnn.runtime.
"""

import math

import numpy as np
import pytest

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.numerics import LayerError, layer_errors


def _sqnr(ref, got):
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    return 10 * math.log10(np.sum(ref**2) / np.sum((ref - got) ** 2))


def _litert_outputs(path, x):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # The reference kernels, as numerics reads them (XNNPACK's int8 kernels round differently).
    interpreter = Interpreter(
        model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        q = image[None]
        scale, zero = inp["quantization"]
        if scale:
            q = np.clip(np.round(q / scale) + zero, -128, 127)
        interpreter.set_tensor(inp["index"], q.astype(inp["dtype"]))
        interpreter.invoke()
        value = interpreter.get_tensor(out["index"]).astype(np.float32)
        scale, zero = out["quantization"]
        results.append((value - zero) * scale if scale else value)
    return np.concatenate(results)


def _ort_outputs(path, x):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_int8_against_float_per_layer(trained_tiny, fmt):
    assert trained_tiny["keras_accuracy"] > 0.5  # the model learned something (chance: 0.1)
    x = trained_tiny["x"][:48]
    quantized, reference = trained_tiny[f"int8-{fmt}"]["path"], trained_tiny[f"float32-{fmt}"]["path"]
    errors = layer_errors(quantized, reference, x)
    assert all(isinstance(e, LayerError) for e in errors)
    kinds = [e.op_type for e in errors]
    if fmt == "tflite":
        assert kinds == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED"]
        final = _sqnr(_litert_outputs(reference, x), _litert_outputs(quantized, x))
    else:  # three Conv (BN-free, ReLU fused by ORT's pre-processing) in graph order, then the classifier
        assert [k for k in kinds if k in ("Conv", "Gemm")] == ["Conv", "Conv", "Conv", "Gemm"]
        assert kinds.index("Gemm") == len(kinds) - 1
        final = _sqnr(_ort_outputs(reference, x), _ort_outputs(quantized, x))
    for e in errors:
        assert e.images == len(x)
        if e.op_type != "Reshape":  # (the ONNX input's Q/DQ: x/255 images quantize exactly, ~145 dB)
            assert 15 < e.sqnr_db < 80, e  # int8: real error, neither zero nor noise
        assert e.rel_rmse == pytest.approx(10 ** (-e.sqnr_db / 20), rel=1e-9)
    # The classifier's figure is the whole file's output error, computed independently.
    assert errors[-1].sqnr_db == pytest.approx(final, abs=1e-3)
    # limit: the first N images only
    assert {e.images for e in layer_errors(quantized, reference, trained_tiny["x"], limit=5)} == {5}


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_file_against_itself_is_exact(trained_tiny, fmt):
    path = trained_tiny[f"float32-{fmt}"]["path"]
    errors = layer_errors(path, path, trained_tiny["x"][:4])
    assert errors and all(e.sqnr_db == math.inf and e.rel_rmse == 0.0 for e in errors)
    assert errors[0].to_dict()["sqnr_db"] == "inf"  # JSON-ready


def test_mismatched_requests(trained_tiny, tmp_path):
    x = trained_tiny["x"][:4]
    with pytest.raises(BadArgument, match="same format"):
        layer_errors(trained_tiny["int8-tflite"]["path"], trained_tiny["float32-onnx"]["path"], x)
    with pytest.raises(BadArgument, match="input size"):
        layer_errors(
            trained_tiny["int8-tflite"]["path"],
            trained_tiny["float32-tflite"]["path"],
            np.zeros((2, 32, 32, 3), np.float32),
        )
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 3])],
    )
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), other)
    with pytest.raises(BadArgument, match="--reference other.onnx takes input 1x32x32x3"):
        layer_errors(trained_tiny["int8-onnx"]["path"], other, x)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(EdgecnnError, match="not a loadable TFLite model"):
        layer_errors(junk, trained_tiny["float32-tflite"]["path"], x)
