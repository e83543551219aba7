"""The settings int8 ONNX export passes to ONNX Runtime's quantize_static, and the per-op weight range.

The choice (u8s8, per channel, 7-bit weights) is measured in benchmarks/arm/onnx_kernels.py: with
8-bit weights ONNX Runtime's AVX2 kernels without VNNI saturate and the answer depends on the CPU.
These tests pin what reaches ORT; they build small ONNX graphs by hand (no TensorFlow).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from converters.onnx import (  # noqa: E402
    STATIC_INT8_SETTINGS,
    STATIC_INT16X8_SETTINGS,
    depthwise_weights,
    quantize_static_qdq,
)


def _graph(tmp_path):
    """input -> depthwise 3x3 (8 channels) -> pointwise 1x1 (8 -> 4) -> grouped 3x3 (2 groups of 2)."""
    rng = np.random.default_rng(0)
    weights = {
        "dw_w": rng.normal(size=(8, 1, 3, 3)),
        "pw_w": rng.normal(size=(4, 8, 1, 1)),
        "gr_w": rng.normal(size=(4, 2, 3, 3)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "dw_w"], ["a"], group=8, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("Conv", ["a", "pw_w"], ["b"], name="pw"),
        helper.make_node("Conv", ["b", "gr_w"], ["y"], group=2, pads=[1, 1, 1, 1], name="grouped"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "g.onnx"
    onnx.save(model, path)
    return path


def _reader():
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.batches = iter([{"x": rng.uniform(0, 1, (1, 8, 6, 6)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    return Reader()


def test_int8_settings_are_u8s8_per_channel_7_bit_and_plain_json():
    assert json.loads(json.dumps(STATIC_INT8_SETTINGS)) == STATIC_INT8_SETTINGS
    assert {
        k: STATIC_INT8_SETTINGS[k]
        for k in ("quant_format", "activation_type", "weight_type", "per_channel", "reduce_range", "weight_symmetric")
    } == {
        "quant_format": "QDQ",
        "activation_type": "QUInt8",
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": True,
        "weight_symmetric": True,
    }
    assert not STATIC_INT8_SETTINGS.get("depthwise_full_range", False)  # measured, no gain: off
    assert STATIC_INT16X8_SETTINGS["reduce_range"] is False


def test_depthwise_weights_are_the_one_channel_per_group_convs(tmp_path):
    assert depthwise_weights(_graph(tmp_path)) == ["dw_w"]


def test_quantize_static_receives_every_setting(tmp_path, monkeypatch):
    import onnxruntime.quantization as ortq

    seen = {}
    monkeypatch.setattr(ortq, "quantize_static", lambda *args, **kwargs: seen.update(kwargs))
    quantize_static_qdq(
        _graph(tmp_path), tmp_path / "q.onnx", _reader, settings=STATIC_INT8_SETTINGS, calib_method="minmax"
    )
    assert seen["reduce_range"] is True and seen["per_channel"] is True
    assert (seen["activation_type"], seen["weight_type"]) == (ortq.QuantType.QUInt8, ortq.QuantType.QInt8)
    assert seen["quant_format"] == ortq.QuantFormat.QDQ
    assert seen["extra_options"] == {"ActivationSymmetric": False, "WeightSymmetric": True, "UseQDQContribOps": False}
    seen.clear()
    quantize_static_qdq(
        _graph(tmp_path),
        tmp_path / "q.onnx",
        _reader,
        settings={**STATIC_INT8_SETTINGS, "depthwise_full_range": True},
        calib_method="minmax",
    )
    assert seen["extra_options"]["TensorQuantOverrides"] == {"dw_w": [{"axis": 0, "reduce_range": False}]}


def _int_weights(path) -> dict:
    graph = onnx.load(str(path)).graph
    return {
        t.name: numpy_helper.to_array(t).astype(np.int32)
        for t in graph.initializer
        if t.data_type == TensorProto.INT8 and len(t.dims) == 4
    }


@pytest.mark.parametrize("depthwise_full_range", [False, True])
def test_weights_use_7_bits_except_where_asked(tmp_path, depthwise_full_range):
    """Through ONNX Runtime itself: every weight within [-64, 64] with export's settings; with
    depthwise_full_range the depthwise one reaches 127 and the others stay within 64."""
    out = tmp_path / "q.onnx"
    quantize_static_qdq(
        _graph(tmp_path),
        out,
        _reader,
        calib_method="minmax",
        settings={**STATIC_INT8_SETTINGS, "depthwise_full_range": depthwise_full_range},
    )
    weights = _int_weights(out)
    assert len(weights) == 3
    largest = {name.split("_quantized")[0]: int(np.abs(w).max()) for name, w in weights.items()}
    assert largest["dw_w"] == (127 if depthwise_full_range else 64)
    assert largest["pw_w"] == largest["gr_w"] == 64


def _many_images(count: int):
    from calibration._ort import make_reader

    rng = np.random.default_rng(2)
    batches = [rng.uniform(0, 1, (1, 6, 6, 8)).astype(np.float32) for _ in range(count)]
    return lambda: make_reader(batches, "x", layout="NCHW")


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_histogram_calibrators_get_the_images_a_chunk_at_a_time(tmp_path, monkeypatch, method):
    """Through ONNX Runtime: with a budget of 5 images' activations, entropy and percentile bin 20
    images as 4 chunks of 5 (memory held: one chunk's activations, whatever the calibration set's
    size); min/max reads them in one pass; within the default budget all 20 go at once (ORT's way)."""
    from onnxruntime.quantization import calibrate

    chunks = []

    def counting(collect):
        def collect_data(self, data_reader):
            original = data_reader.get_next
            read = []
            data_reader.get_next = lambda: read.append(1) or original()
            collect(self, data_reader)
            chunks.append(len(read) - 1)  # the last call answered None

        return collect_data

    for calibrater in (calibrate.HistogramCalibrater, calibrate.MinMaxCalibrater):
        monkeypatch.setattr(calibrater, "collect_data", counting(calibrater.collect_data))
    run = lambda: quantize_static_qdq(  # noqa: E731
        _graph(tmp_path), tmp_path / "q.onnx", _many_images(20), settings=STATIC_INT8_SETTINGS, calib_method=method
    )
    from converters.onnx import activation_bytes_per_image

    per_image = activation_bytes_per_image(_graph(tmp_path))
    assert per_image == 4 * (8 * 36 + 8 * 36 + 4 * 36 + 4 * 36)  # x, a, b, y: 1x8x6x6, ..., 1x4x6x6
    monkeypatch.setenv("EDGECNN_HISTOGRAM_BUDGET_MB", str(5.5 * per_image / 2**20))
    run()
    assert chunks == ([20] if method == "minmax" else [5, 5, 5, 5])
    assert onnx.load(str(tmp_path / "q.onnx")).graph.node  # a quantized model was written
    chunks.clear()
    monkeypatch.delenv("EDGECNN_HISTOGRAM_BUDGET_MB")
    run()
    assert chunks == [20]
