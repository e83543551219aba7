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


@pytest.mark.parametrize("installed, expected", [
    (("litert", "tflite-runtime", "tf"), "litert"),
    (("tflite-runtime", "tf"), "tflite-runtime"),
    (("litert", "tf"), "litert"),
    (("tf",), "tf"),
])
def test_tflite_runtime_fallback_order(monkeypatch, installed, expected):
    """`auto` takes the first runtime that imports: ai_edge_litert, tflite_runtime, then
    TensorFlow's interpreter; each is reported under its own name."""
    from edgecnn.runtime import tflite

    modules = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter",
               "tf": "tensorflow.lite.python.interpreter"}
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

    _block(monkeypatch, "ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
           "tflite_runtime.interpreter", "tensorflow", "tensorflow.lite.python.interpreter")
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
for path in ({exported_int8['tflite']['path']!r}, {exported_int8['onnx']['path']!r}):
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
