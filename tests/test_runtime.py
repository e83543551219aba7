"""The runtime layer: sessions, (de)quantization, and no TensorFlow on the runtime side."""

import subprocess
import sys

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


def test_sessions_agree_across_formats(exported_int8):
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    tflite = run_float(open_session(exported_int8["tflite"]["path"], threads=1), batch)[0]
    onnx = run_float(open_session(exported_int8["onnx"]["path"], threads=1), batch)[0]
    assert tflite.shape == onnx.shape == (1, 10)
    assert np.abs(tflite - onnx).max() < 0.05


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
