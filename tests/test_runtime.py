"""The runtime layer: sessions, (de)quantization, and no TensorFlow on the runtime side."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.runtime import TensorInfo, dequantize, open_session, quantize, run_float


def test_quantize_round_trip_saturates():
    info = TensorInfo("x", (1, 4), "int8", scale=0.5, zero_point=-1)
    q = quantize(np.array([0.0, 1.0, -1.0, 1000.0]), info)
    assert q.dtype == np.int8
    assert q.tolist() == [-1, 1, -3, 127]
    np.testing.assert_allclose(dequantize(q[:3], info), [0.0, 1.0, -1.0])


def test_unquantized_tensors_pass_through_in_their_dtype():
    info = TensorInfo("x", (1,), "float16")
    assert quantize(np.array([1.5]), info).dtype == np.float16
    assert dequantize(np.array([1.5], np.float16), info).dtype == np.float32


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(EdgecnnError, match="no such file"):
        open_session(tmp_path / "missing.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(EdgecnnError, match="not a loadable TFLite model"):
        open_session(garbage)
    garbage_onnx = tmp_path / "garbage.onnx"
    garbage_onnx.write_bytes(b"not protobuf at all")
    with pytest.raises(EdgecnnError, match="not a loadable ONNX model"):
        open_session(garbage_onnx)
    other = tmp_path / "model.pb"
    other.write_bytes(b"x")
    with pytest.raises(BadArgument, match="not a .tflite, .onnx or Keras"):
        open_session(other)


def test_provider_and_runtime_checks(exported_int8):
    path = exported_int8["tflite"]["path"]
    with pytest.raises(BadArgument, match="provider"):
        open_session(path, provider="cuda")
    with pytest.raises(BadArgument):
        open_session(path, runtime="onnxruntime")
    with pytest.raises(EdgecnnError, match="CUDAExecutionProvider"):
        open_session(exported_int8["onnx"]["path"], provider="cuda")


def _fashion_rgb32(count):
    """Fashion-MNIST images as the fixture model was trained on them: RGB 32x32, `tf` scaling."""
    from PIL import Image

    with np.load(Path(__file__).parent / "data" / "fashion-mnist-test-200.npz") as npz:
        x, y = npz["x"][:count], npz["y"][:count].astype(np.int64)
    images = [np.asarray(Image.fromarray(im, "L").convert("RGB").resize((32, 32), Image.BILINEAR)) for im in x]
    return np.stack(images).astype(np.float32) / 127.5 - 1.0, y


def test_sessions_agree_across_formats(exported_int8):
    """The two int8 artifacts of the trained fixture (TFLite's 8-bit weights, ONNX's 7-bit) give
    the same answers on images it knows, and those answers vary (so agreeing means something)."""
    batch, labels = _fashion_rgb32(64)
    tflite = run_float(open_session(exported_int8["tflite"]["path"], threads=1), batch)[0]
    onnx = run_float(open_session(exported_int8["onnx"]["path"], threads=1), batch)[0]
    assert tflite.shape == onnx.shape == (64, 10)
    assert len(np.unique(tflite.argmax(1))) >= 3 and tflite.std(axis=1).mean() > 0.01
    assert np.mean(tflite.argmax(1) == labels) > 0.3 and np.mean(onnx.argmax(1) == labels) > 0.3  # learned
    assert np.mean(tflite.argmax(1) == onnx.argmax(1)) >= 0.75
    assert np.abs(tflite - onnx).max() < 0.6
    # one image alone gives what it gives in the batch
    single = run_float(open_session(exported_int8["tflite"]["path"], threads=1), batch[:1])[0]
    np.testing.assert_allclose(single, tflite[:1], atol=1e-6)


# -- the TFLite runtime fallback: LiteRT, then tflite-runtime, then TensorFlow ----------------------


def _fake_interpreter_module(monkeypatch, module_name):
    """Put a module with its own `Interpreter` class at `module_name` (and its parents)."""
    import types

    class Interpreter:  # noqa: D401 - a stand-in
        origin = module_name

    parts = module_name.split(".")
    for depth in range(1, len(parts)):
        monkeypatch.setitem(sys.modules, ".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
    module = types.ModuleType(module_name)
    module.Interpreter = Interpreter
    monkeypatch.setitem(sys.modules, module_name, module)
    return Interpreter


def _block(monkeypatch, *module_names):
    """Make `import name` raise ImportError, as on a machine without that package."""
    for name in module_names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    "installed, expected",
    [
        (("litert", "tflite-runtime", "tf"), "litert"),
        (("tflite-runtime", "tf"), "tflite-runtime"),
        (("litert", "tf"), "litert"),
        (("tf",), "tf"),
    ],
)
def test_tflite_runtime_fallback_order(monkeypatch, installed, expected):
    """`auto` takes the first runtime that imports: ai_edge_litert, tflite_runtime, then
    TensorFlow's interpreter; each is reported under its own name."""
    from edgecnn.runtime import tflite

    modules = {
        "litert": "ai_edge_litert.interpreter",
        "tflite-runtime": "tflite_runtime.interpreter",
        "tf": "tensorflow.lite.python.interpreter",
    }
    fakes = {}
    for name, module_name in modules.items():
        if name in installed:
            fakes[name] = _fake_interpreter_module(monkeypatch, module_name)
        else:
            _block(monkeypatch, module_name, module_name.split(".")[0])
    monkeypatch.setattr("edgecnn._tf.import_keras", lambda: None)  # the fake TensorFlow needs no Keras
    interpreter_class, runtime, _version = tflite.load_interpreter("auto")
    assert runtime == expected
    assert interpreter_class is fakes[expected]
    # Asked by name, each installed one is taken even when an earlier one is there.
    for name in installed:
        assert tflite.load_interpreter(name)[0] is fakes[name]


def test_no_tflite_runtime_is_one_clear_error(monkeypatch):
    from edgecnn.runtime import tflite

    _block(
        monkeypatch,
        "ai_edge_litert",
        "ai_edge_litert.interpreter",
        "tflite_runtime",
        "tflite_runtime.interpreter",
        "tensorflow",
        "tensorflow.lite.python.interpreter",
    )
    monkeypatch.setattr("edgecnn._tf.import_keras", lambda: None)
    with pytest.raises(EdgecnnError, match="no TFLite runtime is installed: pip install ai-edge-litert"):
        tflite.load_interpreter("auto")
    with pytest.raises(EdgecnnError, match="runtime `tflite-runtime` is not installed: pip install tflite-runtime"):
        tflite.load_interpreter("tflite-runtime")


def test_auto_session_runs_on_litert_here(exported_int8):
    """With every runtime installed (this environment), LiteRT is the one that runs."""
    session = open_session(exported_int8["tflite"]["path"])
    assert session.runtime == "litert" and session.runtime_version not in ("", "unknown")


def test_runtime_side_never_imports_tensorflow(exported_int8):
    """What `pip install edgecnn` (no extra) runs on a board must not need TensorFlow."""
    code = f"""
import sys, numpy as np
import edgecnn.cli, edgecnn.runtime, edgecnn.manifest, calibration
from edgecnn.runtime import open_session, run_float
for path in ({exported_int8["tflite"]["path"]!r}, {exported_int8["onnx"]["path"]!r}):
    session = open_session(path)
    run_float(session, np.zeros((1, 32, 32, 3), np.float32))
    assert edgecnn.manifest.read_manifest_for(path) is not None
heavy = [m for m in ("tensorflow", "tf_keras", "keras", "tf2onnx") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- predict: one call to run an artifact over images ------------------------------------------------


def _by_hand(path, images):
    """What predict promises, written out: each image alone, quantized and dequantized by hand."""
    session = open_session(path, threads=1)
    (info,) = session.inputs
    rows = [dequantize(session.run([quantize(image[None], info)])[0], session.outputs[0]) for image in images]
    return np.concatenate(rows)


@pytest.mark.parametrize("key", ["int8-tflite", "int8-onnx", "float32-tflite"])
def test_predict_batches_and_quantizes_like_one_image_at_a_time(trained_tiny, key):
    """predict over 45 images in batches of 16 (the last one short: TFLite resizes its input, ONNX
    Runtime takes the dynamic batch) gives what each image gives alone, on a model that learned."""
    from edgecnn.runtime import output_spread, predict

    path, images = trained_tiny[key]["path"], trained_tiny["x"][:45]
    outputs = predict(path, images, batch_size=16, threads=1)
    assert outputs.shape == (45, 10) and outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, _by_hand(path, images), atol=1e-5)
    assert output_spread(outputs)["informative"] is True
    assert np.mean(outputs.argmax(1) == trained_tiny["y"][:45]) > 0.3  # the model's answers (chance: 0.1)
    both = predict(open_session(path), images[:5], output=None)  # an open session; every output
    assert isinstance(both, list) and len(both) == 1
    np.testing.assert_allclose(both[0], outputs[:5], atol=1e-5)


def test_predict_feeds_a_fixed_batch_of_one_image_by_image(tmp_path):
    """An ONNX file exported at batch 1 takes one image at a time: without a batch_size, predict
    feeds the batch the input fixes."""
    import onnx
    from onnx import TensorProto, helper

    from edgecnn.runtime import predict

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    images = np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4)
    np.testing.assert_array_equal(predict(path, images), np.maximum(images, 0))
    with pytest.raises(Exception, match="(?i)dimension|shape"):  # a batch asked for is fed as asked
        predict(path, images, batch_size=5)


def test_predict_refuses_what_it_cannot_run(trained_tiny):
    from edgecnn.runtime import predict

    path = trained_tiny["int8-tflite"]["path"]
    with pytest.raises(EdgecnnError, match=r"images of shape \(32, 32, 3\) do not fit input"):
        predict(path, np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(EdgecnnError, match="no images to predict"):
        predict(path, np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(BadArgument, match="batch_size must be an integer of at least 1. Received 0"):
        predict(path, np.zeros((2, 28, 28, 1), np.float32), batch_size=0)


def test_informative_is_one_rule_for_parity_and_benchmarks(trained_tiny):
    """Flat outputs (a random deep CNN's uniform softmax) are not informative, varied ones are;
    export's parity record follows the same rule and threshold."""
    from edgecnn.runtime import INFORMATIVE_OUTPUT_STD, output_spread

    flat = output_spread(np.full((8, 10), 0.1, np.float32))
    assert flat["informative"] is False and flat["distinct_top1"] == 1
    barely = np.full((8, 10), 0.1, np.float32)
    barely[np.arange(8), np.arange(8)] += INFORMATIVE_OUTPUT_STD  # eight classes, spread under the line
    assert output_spread(barely)["distinct_top1"] == 8 and output_spread(barely)["informative"] is False
    varied = np.eye(10, dtype=np.float32)[np.arange(8) % 3]
    assert output_spread(varied)["informative"] is True
    parity = trained_tiny["int8-tflite"]["parity"]
    assert parity["informative"] is True and parity["reference_output_std"] > INFORMATIVE_OUTPUT_STD
    assert parity["reference_top1_classes"] > 1


# -- graph facts: the op census and integer-only, recorded in the manifest ---------------------------


def test_manifest_records_the_op_census_and_integer_only(trained_tiny):
    """export writes `graph` into the manifest: the int8 TFLite graph is integer-only, the float32
    one is not; the counts agree with the interpreter's own list of ops; ONNX leaves integer-only
    to ONNX Runtime's fusion (None) but counts its Q/DQ nodes."""
    import json
    from collections import Counter

    from edgecnn.runtime import graph_facts

    int8, float32 = trained_tiny["int8-tflite"], trained_tiny["float32-tflite"]
    for manifest in (int8, float32):
        on_disk = json.loads((Path(manifest["path"]).parent / "manifest.json").read_text())
        assert on_disk["graph"] == graph_facts(manifest["path"])
        assert on_disk["graph"]["op_counts"] == dict(Counter(open_session(manifest["path"]).op_types()))
    assert int8["graph"]["integer_only"] is True
    assert int8["graph"]["float_ops"] == [] and int8["graph"]["conversions_inside"] == []
    assert float32["graph"]["integer_only"] is False and "CONV_2D" in float32["graph"]["op_counts"]
    onnx = trained_tiny["int8-onnx"]["graph"]
    assert onnx["integer_only"] is None and onnx["conversions"]["QuantizeLinear"] > 0
    assert onnx["op_counts"] == dict(Counter(open_session(trained_tiny["int8-onnx"]["path"]).op_types()))
    with pytest.raises(BadArgument, match="not a .tflite or .onnx file"):
        graph_facts(Path(int8["path"]).with_suffix(".pb"))
