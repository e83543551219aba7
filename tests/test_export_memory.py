"""Export memory and time: per-stage records, a process per format, tf2onnx without its
copies, and the refusal of an export that would not fit (issue 16)."""

import hashlib
import os

import numpy as np
import pytest

from edgecnn.errors import EdgecnnError

SHARED_STAGES = ("source", "build", "calibration_data", "reference")


def _stage_names(manifest):
    return [name for name in manifest["export_stages"] if name != "process"]


def test_manifest_records_every_stage_with_seconds_and_peak_rss(exported_int8):
    tflite, onnx = exported_int8["tflite"], exported_int8["onnx"]
    assert _stage_names(tflite) == [*SHARED_STAGES, "tflite.convert", "tflite.parity"]
    assert _stage_names(onnx) == [*SHARED_STAGES, "onnx.tf2onnx", "onnx.preprocess", "onnx.quantize", "onnx.parity"]
    for manifest in (tflite, onnx):
        stages = manifest["export_stages"]
        assert stages["process"] == "shared"  # a 32 px model converts both formats in one process
        for name in _stage_names(manifest):
            assert stages[name]["seconds"] >= 0
            assert stages[name]["peak_rss_mb"] > 0
        peaks = [stages[name]["peak_rss_mb"] for name in _stage_names(manifest)]
        assert peaks == sorted(peaks)  # a high-water mark: it never goes down
        assert stages["build"]["seconds"] < manifest["export_seconds"]
    convert = tflite["export_stages"]["tflite.convert"]
    assert 0 < convert["calibration_seconds"] <= convert["seconds"]


def test_a_process_per_format_gives_the_same_bytes(exported_int8, tmp_path, monkeypatch):
    from edgecnn.export import ExportRequest, export

    monkeypatch.setenv("EDGECNN_EXPORT_PROCESSES", "per-format")
    fixture = exported_int8["request"]
    request = ExportRequest(
        model=fixture.model,
        quantization="int8",
        formats=("tflite", "onnx"),
        input_size=32,
        alpha=0.35,
        classes=10,
        weights=fixture.weights,
        calib_samples=16,
        out=tmp_path,
    )
    tflite, onnx = export(request)
    assert tflite["sha256"] == exported_int8["tflite"]["sha256"]
    assert onnx["sha256"] == exported_int8["onnx"]["sha256"]
    for manifest in (tflite, onnx):
        assert manifest["export_stages"]["process"] == "per-format"
        assert "process_start" in manifest["export_stages"]
        assert manifest["parity"] == exported_int8[manifest["format"]]["parity"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mobilenet_v2-a0.35-32-int8",
        "mobilenet_v2-a0.35-32-int8-onnx",
    ]


def _tiny_keras_model():
    from edgecnn._tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    x = keras.layers.Conv2D(8, 1, name="pw")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="predictions")(x))


def _default_tf2onnx_bytes(model):
    """What tf2onnx makes in its own default mode (deep copies, every attribute re-copied)."""
    import tensorflow as tf
    import tf2onnx

    from converters.fold_batchnorm import fold_batchnorm
    from converters.onnx import INPUT_NAME, OPSET, _canonical

    signature = [tf.TensorSpec((None, 16, 16, 3), tf.float32, name=INPUT_NAME)]
    folded, _ = fold_batchnorm(model)
    proto, _ = tf2onnx.convert.from_keras(folded, input_signature=signature, opset=OPSET)
    return _canonical(proto).SerializeToString()


def _batch_named(model_bytes: bytes) -> bytes:
    """The model with its batch dimension named `batch`: tf2onnx numbers that name
    (`unk__N`) from a process-wide counter, so two conversions in one process differ
    there (a fresh process's first conversion always gets the same one)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = "batch"
    return model.SerializeToString()


def test_lean_tf2onnx_makes_the_same_model_and_restores_tf2onnx():
    from tf2onnx import graph as tf2onnx_graph

    from converters.onnx import keras_to_onnx

    model = _tiny_keras_model()
    original = tf2onnx_graph.Node.update_proto
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ
    lean, _ = keras_to_onnx(model)
    assert tf2onnx_graph.Node.update_proto is original
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ
    default = _default_tf2onnx_bytes(model)
    assert len(lean) == len(default)
    assert hashlib.sha256(_batch_named(lean)).digest() == hashlib.sha256(_batch_named(default)).digest()


def test_lean_tf2onnx_falls_back_when_an_optimizer_fails(monkeypatch):
    """Without tf2onnx's copies a failing optimizer would fail the conversion: it is then
    converted again in tf2onnx's default mode, which skips that optimizer."""
    import tf2onnx.convert
    import tf2onnx.optimizer

    from converters.onnx import keras_to_onnx

    model = _tiny_keras_model()
    expected, _ = keras_to_onnx(model)
    calls = []
    real = tf2onnx.optimizer.optimize_graph

    def flaky(graph, catch_errors=True, optimizers=None):
        calls.append(catch_errors)
        if not catch_errors:
            raise RuntimeError("an optimizer failed")
        return real(graph, catch_errors, optimizers=optimizers)

    monkeypatch.setattr(tf2onnx.convert.optimizer, "optimize_graph", flaky)
    assert _batch_named(keras_to_onnx(model)[0]) == _batch_named(expected)
    assert calls == [False, True]


def test_estimate_one_process_adds_up_and_histograms_hold_at_most_the_budget():
    from converters.memory import estimate_peak_bytes

    common = dict(
        params=138_000_000, quantization="int8", calib_samples=100, activation_bytes=40_000_000, current_rss=10**9
    )
    apart = estimate_peak_bytes(formats=("tflite", "onnx"), calib_method="minmax", one_process=False, **common)
    together = estimate_peak_bytes(formats=("tflite", "onnx"), calib_method="minmax", one_process=True, **common)
    alone = estimate_peak_bytes(formats=("onnx",), calib_method="minmax", one_process=False, **common)
    tflite = estimate_peak_bytes(formats=("tflite",), calib_method="minmax", one_process=False, **common)
    assert together > apart == max(alone, tflite)  # a process each: the larger of the two
    entropy = estimate_peak_bytes(formats=("onnx",), calib_method="entropy", one_process=False, **common)
    assert entropy - alone == 50 * 40_000_000  # 100 images of 40 MB: binned 50 at a time (2 GiB budget)
    more = estimate_peak_bytes(
        formats=("onnx",), calib_method="entropy", one_process=False, **{**common, "calib_samples": 1000}
    )
    assert more - alone == 50 * 40_000_000  # bounded by the budget, not by the calibration set
    few = estimate_peak_bytes(
        formats=("onnx",), calib_method="entropy", one_process=False, **{**common, "calib_samples": 20}
    )
    assert few - alone == 20 * 40_000_000  # within the budget: all at once


def test_histogram_stride_is_every_image_within_the_budget_else_a_divisor_that_fits(monkeypatch):
    from converters.memory import HISTOGRAM_BUDGET_BYTES, histogram_stride

    assert HISTOGRAM_BUDGET_BYTES == 2 * 2**30
    mb = 2**20
    assert histogram_stride(100, 10 * mb) == 100  # 1 GB in all: ONNX Runtime's one pass
    assert histogram_stride(100, 87 * mb) == 20  # MobileNetV2 at 224: 23 fit, 20 divides 100
    assert histogram_stride(97, 87 * mb) == 1  # a prime count: one image at a time
    assert histogram_stride(1000, 87 * mb) == 20
    assert histogram_stride(8, 4096 * mb) == 1  # one image over the budget: still one at a time
    monkeypatch.setenv("EDGECNN_HISTOGRAM_BUDGET_MB", "100")
    assert histogram_stride(20, 20 * mb) == 5


def test_check_refuses_in_one_line_with_the_estimate_and_remedies():
    from converters.memory import check_export_memory

    common = dict(
        params=138_000_000,
        quantization="int8",
        calib_samples=100,
        activation_bytes=60_000_000,
        current_rss=3 * 10**9,
        one_process=False,
    )
    assert (
        check_export_memory(formats=("tflite", "onnx"), calib_method="minmax", available=20 * 10**9, **common)
        > 3 * 10**9
    )
    with pytest.raises(EdgecnnError) as caught:
        check_export_memory(formats=("tflite", "onnx"), calib_method="entropy", available=10**9, **common)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 1
    assert "GB of memory at its peak" in message and "138.0M parameters" in message
    assert "--format tflite, then --format onnx" in message
    assert (
        "use --calib-method minmax (--calib-method entropy holds the activations of 25 images at once, 1,500 MB)"
        in message
    )
    with pytest.raises(EdgecnnError) as caught:
        check_export_memory(formats=("tflite",), calib_method="minmax", available=10**9, **common)
    assert "--format" not in str(caught.value) and "--calib-samples" not in str(caught.value)


def test_export_that_would_not_fit_stops_before_converting_and_leaves_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import converters.memory
    from edgecnn.cli import app

    monkeypatch.setattr(converters.memory, "available_bytes", lambda: 1000)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", "lenet5", "--int8", "--format", "all", "--out", str(out)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs about" in lines[0] and "--format tflite, then --format onnx" in lines[0]
    assert not out.exists()


def test_patched_update_proto_writes_what_changed_and_keeps_what_did_not():
    """tf2onnx 1.17 empties and refills every node's attributes after each optimizer (with
    upb the removed copies stay in memory); the patched method refills them only when
    they changed, and the NodeProto then says what the node holds, as before."""
    from onnx import helper, numpy_helper
    from tf2onnx.graph import Graph

    from converters.onnx import _update_proto_if_changed

    weights = numpy_helper.from_array(np.arange(1000, dtype=np.float32), "w")
    graph = Graph(
        [helper.make_node("Const", [], ["w:0"], name="w", value=weights)], output_shapes={}, dtypes={}, opset=17
    )
    const = graph.get_node_by_name("w")
    before = const.op.SerializeToString()
    _update_proto_if_changed(const)
    assert const.op.SerializeToString() == before
    const.set_attr("value", numpy_helper.from_array(np.arange(10, dtype=np.float32), "w"))
    _update_proto_if_changed(const)
    assert numpy_helper.to_array(const.op.attribute[0].t).tolist() == list(range(10))


def _held_out_keras_model(*, derived: bool = False):
    """Kernels of 1024+ elements (held out of TensorFlow's graphs), non-zero biases (as a
    trained model has; zero ones stay in: grappler simplifies by them), one small kernel.
    With `derived`, a layer multiplies its kernel by 2 in the graph, which grappler folds
    into a new constant computed from the weight."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    import tensorflow as tf

    class DoubledDense(keras.layers.Dense):
        def call(self, inputs):
            return tf.matmul(inputs, self.kernel * 2.0) + self.bias

    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu", name="small")(inputs)  # 432 elements: stays in
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv")(x)  # 2304
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = (DoubledDense if derived else keras.layers.Dense)(64, name="fc")(x)  # 1024
    model = keras.Model(inputs, keras.layers.Dense(4, name="predictions")(x), name="held")
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    return model


def _count_held_out(monkeypatch):
    import converters.held_out as held_out
    import converters.onnx as onnx_converter

    reads, refused = [], []
    read, refuse = onnx_converter._HeldValues.__getitem__, held_out.NotHeldOut.__init__

    def counted_read(self, name):
        reads.append(name)
        return read(self, name)

    def counted_refusal(self, *args):
        refused.append(args)
        refuse(self, *args)

    monkeypatch.setattr(onnx_converter._HeldValues, "__getitem__", counted_read)
    monkeypatch.setattr(held_out.NotHeldOut, "__init__", counted_refusal)
    return reads, refused


def test_weights_held_out_of_tensorflow_give_the_same_model_and_restore_everything(monkeypatch):
    import tf2onnx.convert
    from tensorflow.python.framework import convert_to_constants, tensor_util
    from tf2onnx import tf_loader

    from converters.onnx import keras_to_onnx

    patched = (
        convert_to_constants._FunctionConverterDataInEager._eval,
        tensor_util.make_tensor_proto,
        tf_loader.tf_optimize,
        tf2onnx.convert.process_tf_graph,
    )
    model = _held_out_keras_model()
    reads, refused = _count_held_out(monkeypatch)
    held, _ = keras_to_onnx(model)
    # conv and fc kernels held out (each read twice: tf2onnx's constant folding, its ONNX tensor)
    assert sorted(set(reads)) == ["held/conv/Conv2D/ReadVariableOp", "held/fc/MatMul/ReadVariableOp"]
    assert not refused
    assert (
        convert_to_constants._FunctionConverterDataInEager._eval,
        tensor_util.make_tensor_proto,
        tf_loader.tf_optimize,
        tf2onnx.convert.process_tf_graph,
    ) == patched
    assert _batch_named(held) == _batch_named(_default_tf2onnx_bytes(model))


def test_a_constant_computed_from_a_held_out_weight_converts_again_with_the_weights(monkeypatch):
    from converters.onnx import keras_to_onnx

    model = _held_out_keras_model(derived=True)
    reads, refused = _count_held_out(monkeypatch)
    converted, _ = keras_to_onnx(model)
    assert len(refused) == 1  # grappler folded kernel * 2 into a constant: not held out
    assert _batch_named(converted) == _batch_named(_default_tf2onnx_bytes(model))
    import onnx
    from onnx import numpy_helper

    initializers = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(converted).graph.initializer}
    doubled = 2.0 * model.get_layer("fc").kernel.numpy()
    assert any(value.shape == doubled.shape and np.array_equal(value, doubled) for value in initializers.values())
