"""tflite-runtime, the fallback for 32-bit Pi images, run for real in its own environment.

`.ci/run` builds a side environment as such an image has it: tflite-runtime 2.14 with
numpy<2, edgecnn's runtime dependencies and this checkout (`pip install --no-deps -e .`),
and neither LiteRT, ONNX Runtime nor TensorFlow. There `edgecnn benchmark` and
`edgecnn evaluate` run the shared int8 artifact (the trained MobileNetV2 of conftest.py):
the rows say `tflite-runtime`, and its int8 outputs equal, image by image, those of LiteRT
here run with TFLite's reference kernels (LiteRT's default XNNPACK path is not bit-exact).

Where the environment is absent (a dev machine that never ran .ci/run) the tests skip and
say how to build it; EDGECNN_TFLITE_RUNTIME_ENV points them at another one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = Path(os.environ.get("EDGECNN_TFLITE_RUNTIME_ENV", REPO / ".venv-tflite-runtime"))
PYTHON = ENV / "bin" / "python"
FMNIST = Path(__file__).parent / "data" / "fashion-mnist-test-200.npz"
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

pytestmark = pytest.mark.skipif(
    not PYTHON.is_file(),
    reason=f"no tflite-runtime side environment at {ENV}: .ci/run builds it (or set EDGECNN_TFLITE_RUNTIME_ENV)",
)


def _side(*args, check=True, timeout=300):
    """Run `python ARGS` in the side environment, from a folder outside the checkout."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run([str(PYTHON), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ENV)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def fashion10(tmp_path_factory):
    """The 200 Fashion-MNIST images with their 10 class names (the fixture model's classes)."""
    with np.load(FMNIST) as npz:
        x, y = npz["x"], npz["y"]
    path = tmp_path_factory.mktemp("fashion") / "fashion10.npz"
    np.savez(path, x=x, y=y, class_names=np.array(FASHION_CLASSES))
    return path


def test_side_environment_is_a_pi_image_without_litert():
    """What the other tests rely on: tflite-runtime on numpy<2, this checkout's edgecnn, and none
    of LiteRT, ONNX Runtime or TensorFlow (else `auto` would not fall back)."""
    code = """
import importlib.util, json, numpy, edgecnn, tflite_runtime
from importlib.metadata import version
print(json.dumps({"numpy": numpy.__version__, "tflite_runtime": version("tflite-runtime"),
                  "edgecnn": edgecnn.__file__,
                  "absent": [m for m in ("ai_edge_litert", "onnxruntime", "tensorflow")
                             if importlib.util.find_spec(m) is None]}))
"""
    facts = json.loads(_side("-c", code).stdout)
    assert int(facts["numpy"].split(".")[0]) < 2
    assert facts["tflite_runtime"] == "2.14.0"
    assert Path(facts["edgecnn"]).resolve().parent == REPO / "edgecnn"
    assert facts["absent"] == ["ai_edge_litert", "onnxruntime", "tensorflow"]


def test_benchmark_row_says_tflite_runtime(exported_int8, tmp_path):
    manifest = exported_int8["tflite"]
    out = tmp_path / "bench.jsonl"
    result = _side(
        "-m",
        "edgecnn",
        "benchmark",
        manifest["path"],
        "--runs",
        "5",
        "--warmup",
        "1",
        "--warmup-secs",
        "0",
        "--min-secs",
        "0",
        "--threads",
        "1",
        "--out",
        str(out),
        "--json",
    )
    (row,) = json.loads(result.stdout)
    assert row["status"] == "ok", row.get("error")
    assert row["runtime"] == "tflite-runtime" and row["runtime_version"] == "2.14.0"
    assert row["sha256"] == manifest["sha256"] and row["quantization"] == "int8"
    assert row["inputs"][0]["dtype"] == "int8"
    assert row["latency_ms"]["count"] >= 5 and row["latency_ms"]["p50"] > 0
    assert json.loads(out.read_text().splitlines()[0]) == row
    # Asked for by name, the runtime that is not there is one line and exit 1.
    missing = _side(
        "-m", "edgecnn", "benchmark", manifest["path"], "--runtime", "litert", "--runs", "1", "--json", check=False
    )
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "ai-edge-litert" in (missing.stderr + missing.stdout)


def _fashion_rgb32_tf(count=None):
    """The gray 28x28 images as a straight-line script feeds a 32x32 RGB `tf` model."""
    from PIL import Image

    with np.load(FMNIST) as npz:
        gray, labels = npz["x"][:count], npz["y"][:count].astype(np.int64)
    images = [np.asarray(Image.fromarray(im, "L").convert("RGB").resize((32, 32), Image.BILINEAR)) for im in gray]
    return np.stack(images).astype(np.float32) / 127.5 - 1.0, labels


def _litert_outputs(path, images, *, reference_kernels):
    """Raw int8 outputs of LiteRT here, one image at a time, quantizing by hand; with
    `reference_kernels` through TFLite's built-in kernels instead of the default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = (
        {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if reference_kernels else {}
    )
    interpreter = Interpreter(model_path=str(path), num_threads=1, **kwargs)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    outputs = []
    for image in images:
        interpreter.set_tensor(inp["index"], np.clip(np.round(image[None] / scale) + zero, -128, 127).astype(np.int8))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0].astype(np.int64))
    return np.stack(outputs)


def test_predictions_equal_litert_image_by_image(exported_int8, tmp_path):
    """tflite-runtime (side environment, through edgecnn's own session) gives, image by image,
    the int8 outputs LiteRT gives here with TFLite's reference kernels: bit for bit.

    LiteRT's default path (XNNPACK, what edgecnn uses here) is not bit-exact with them: on this
    model its outputs differ by up to ~20 int8 steps and a few top-1 answers in 64 change
    (measured with LiteRT 2.3.0; tflite-runtime 2.14's XNNPACK equals the reference kernels).
    That is checked as agreement, not equality."""
    path = exported_int8["tflite"]["path"]
    images, _ = _fashion_rgb32_tf(64)
    np.save(tmp_path / "images.npy", images)
    code = f"""
import json, numpy as np
from edgecnn.runtime import open_session
session = open_session({path!r}, threads=1)
(info,) = session.inputs
outputs = []
for image in np.load({str(tmp_path / "images.npy")!r}):
    q = np.clip(np.round(image[None] / info.scale) + info.zero_point, -128, 127).astype(np.int8)
    outputs.append(session.run([q])[0][0].astype(int).tolist())
print(json.dumps({{"runtime": session.runtime, "outputs": outputs}}))
"""
    side = json.loads(_side("-c", code).stdout)
    assert side["runtime"] == "tflite-runtime"
    theirs = np.array(side["outputs"], np.int64)
    reference = _litert_outputs(path, images, reference_kernels=True)
    assert len(np.unique(reference.argmax(1))) >= 3  # the answers vary: equal means something
    np.testing.assert_array_equal(theirs, reference)
    np.testing.assert_array_equal(theirs.argmax(1), reference.argmax(1))
    default = _litert_outputs(path, images, reference_kernels=False)
    assert np.mean(default.argmax(1) == theirs.argmax(1)) >= 0.85


def test_evaluate_row_in_the_side_environment(exported_int8, fashion10):
    """`edgecnn evaluate` there: the row says tflite-runtime, and its correct count is the one a
    straight-line script gets from LiteRT's reference kernels on the same 200 images."""
    from edgecnn.evaluate import evaluate_artifact

    path = exported_int8["tflite"]["path"]
    result = _side("-m", "edgecnn", "evaluate", path, "--data", str(fashion10), "--threads", "1", "--json")
    row = json.loads(result.stdout)
    assert row["runtime"] == "tflite-runtime" and row["runtime_version"] == "2.14.0"
    assert row["sha256"] == exported_int8["tflite"]["sha256"]
    images, labels = _fashion_rgb32_tf()
    predictions = _litert_outputs(path, images, reference_kernels=True).argmax(1)
    assert row["n"] == 200
    assert row["correct"]["top1"] == int(np.sum(predictions == labels))
    assert row["top1"] > 0.3  # trained: well above one in ten
    here = evaluate_artifact(path, fashion10, threads=1)
    assert here["runtime"] == "litert" and here["n"] == 200
    assert abs(here["correct"]["top1"] - row["correct"]["top1"]) <= 0.1 * 200
