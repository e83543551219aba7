"""`edgecnn evaluate`: top-1 equal to an independent straight-line script, quantized inputs,
1001-output models, batching fallback, the result row, and one-line failures.

The independent computations here read the files with numpy, Pillow and the runtimes
directly; they call nothing of `edgecnn.evaluate`, `calibration` or `edgecnn.runtime`.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import one_error_line
from PIL import Image
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.evaluate import class_scores, evaluate_artifact, topk_hits
from edgecnn.results import EVALUATE_SCHEMA

DATA = Path(__file__).parent / "data"
FMNIST = DATA / "fashion-mnist-test-200.npz"
IMAGENET16 = DATA / "imagenet-16"
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

runner = CliRunner()


# -- independent straight-line references (no edgecnn code) ----------------------------------


def _litert_top1(path, x_float):
    """Top-1 predictions of a .tflite file, one image at a time, quantizing by hand."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    predictions = []
    for image in x_float:
        x = image[None]
        if in_scale:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_scale) + in_zero, info.min, info.max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"]).astype(np.float32)
        if out_scale:
            y = (y - out_zero) * out_scale
        predictions.append(int(np.argmax(y[0])))
    return np.array(predictions)


def _ort_top1(path, x_float):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    x = x_float.astype(np.float16 if node.type == "tensor(float16)" else np.float32)
    return np.concatenate(
        [session.run(None, {node.name: x[i : i + 50]})[0].astype(np.float32).argmax(1) for i in range(0, len(x), 50)]
    )


def _fashion_float(unit: bool = True):
    with np.load(FMNIST) as npz:
        x, y = npz["x"], npz["y"].astype(np.int64)
    return (x[..., None].astype(np.float32) / 255.0 if unit else x), y


def _fashion_rgb32_tf():
    """The 28x28 gray images as a straight-line script would feed a 32x32 RGB `tf` model."""
    with np.load(FMNIST) as npz:
        x, y = npz["x"], npz["y"].astype(np.int64)
    images = [np.asarray(Image.fromarray(im, "L").convert("RGB").resize((32, 32), Image.BILINEAR)) for im in x]
    return np.stack(images).astype(np.float32) / 127.5 - 1.0, y


# -- artifacts built here ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained a few epochs on the 200 Fashion-MNIST images, exported through
    edgecnn.export as float32 (TFLite and ONNX), int8 with int8 and uint8 input, and int16x8
    (TFLite), `unit` preprocessing; and the ONNX file with float16 input and output."""
    from edgecnn._tf import import_keras
    from edgecnn.export import ExportRequest, export

    keras = import_keras()
    keras.utils.set_random_seed(0)
    x, y = _fashion_float()
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="predictions"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("trained")
    model_path = root / "fmnist_cnn.keras"
    model.save(model_path)
    (root / "fmnist_cnn.edgecnn.json").write_text(json.dumps({"preprocess": "unit", "class_names": FASHION_CLASSES}))
    out = root / "artifacts"
    out.mkdir()
    common = dict(model=str(model_path), calib=str(FMNIST), calib_samples=64, out=out)
    float32_tflite, float32_onnx = export(ExportRequest(quantization="float32", formats=("tflite", "onnx"), **common))
    (int8_tflite,) = export(ExportRequest(quantization="int8", formats=("tflite",), **common))
    uint8_out = out / "uint8"
    uint8_out.mkdir()
    (uint8_tflite,) = export(
        ExportRequest(quantization="int8", io="uint8", formats=("tflite",), **{**common, "out": uint8_out})
    )
    (int16_tflite,) = export(ExportRequest(quantization="int16x8", io="int16", formats=("tflite",), **common))

    import onnx
    from onnxconverter_common import float16

    half = root / "half" / "fmnist_cnn-float16io.onnx"
    half.parent.mkdir()
    onnx.save(float16.convert_float_to_float16(onnx.load(float32_onnx["path"]), keep_io_types=False), half)
    return {
        "float32": float32_tflite,
        "onnx": float32_onnx,
        "int8": int8_tflite,
        "uint8": uint8_tflite,
        "int16x8": int16_tflite,
        "onnx-float16": {"path": str(half)},
        "root": root,
    }


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Hand-made files without manifests: a 1001-output TFLite classifier whose scores are
    its bias (background highest), a TFLite file that refuses batches other than 1, and an
    NCHW ONNX classifier."""
    import tensorflow as tf

    from edgecnn._tf import import_keras

    keras = import_keras()
    root = tmp_path_factory.mktemp("tiny")
    labels = [
        int(line.rsplit(",", 1)[1]) for line in (IMAGENET16 / "dataset.txt").read_text().splitlines() if line.strip()
    ]
    bias = np.zeros(1001, np.float32)
    bias[0] = 100.0  # background: ranked first unless column 0 is dropped
    for rank, label in enumerate(labels[:5]):
        bias[label + 1] = 10.0 - rank
    inputs = keras.layers.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(1001, kernel_initializer="zeros", name="predictions")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("predictions").set_weights([np.zeros((3, 1001), np.float32), bias])
    background = root / "background1001.tflite"
    background.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    kernel = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
    def batch_one(x):
        return tf.reshape(tf.matmul(tf.reshape(x, [1, 64]), kernel), [1, 10])

    fixed = root / "batch1.tflite"
    fixed.write_bytes(
        tf.lite.TFLiteConverter.from_concrete_functions([batch_one.get_concrete_function()], batch_one).convert()
    )

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(1).normal(size=(3, 10)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "nchw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    nchw = root / "nchw.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), nchw)
    return {"background": background, "labels": labels, "batch1": fixed, "nchw": nchw}


@pytest.fixture
def fashion_rgb_npz(tmp_path):
    """The 200 Fashion-MNIST images with 10 class names, for the 10-class fixture models."""
    with np.load(FMNIST) as npz:
        x, y = npz["x"], npz["y"]
    path = tmp_path / "fashion10.npz"
    np.savez(path, x=x, y=y, class_names=np.array(FASHION_CLASSES))
    return path


# -- scoring -------------------------------------------------------------------------------------


def test_topk_hits_counts_ties_by_class_index():
    scores = np.array([[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], np.float32)
    labels = np.array([1, 1, 0])
    assert topk_hits(scores, labels, k=1) == (1, 1)  # the tie in row 1 goes to class 0
    assert topk_hits(scores, labels, k=2) == (1, 2)
    assert topk_hits(scores, labels, k=5) == (1, 3)  # k clipped to 3 classes
    assert topk_hits(scores, labels, k=1)[0] == int(np.sum(scores.argmax(1) == labels))


def test_class_scores_drops_background_column():
    outputs = np.zeros((2, 1001), np.float32)
    outputs[0, 0] = outputs[1, 0] = 9.0  # background
    outputs[0, 1 + 7] = outputs[1, 1 + 999] = 5.0
    scores = class_scores(outputs, drop_background=True)
    assert scores.shape == (2, 1000)
    assert topk_hits(scores, np.array([7, 999]), k=1) == (2, 2)
    assert topk_hits(class_scores(outputs, drop_background=False), np.array([7, 999]), k=1)[0] == 0


# -- the pipeline's steps, one at a time ---------------------------------------------------------


def test_background_dropped_only_for_1001_outputs_against_1000_classes_or_unknown():
    from edgecnn.errors import BadArgument
    from edgecnn.evaluate import background_dropped

    assert background_dropped(1001, None, "m.tflite", "d") and background_dropped(1001, 1000, "m.tflite", "d")
    assert not background_dropped(10, 10, "m.tflite", "d") and not background_dropped(10, None, "m.tflite", "d")
    with pytest.raises(
        BadArgument,
        match=r"^m.tflite has 10 outputs but d has 5 classes: evaluate a model on data "
        r"labelled with its own classes$",
    ):
        background_dropped(10, 5, "m.tflite", "d")
    with pytest.raises(BadArgument, match=r"has 1001 outputs but d has 10 classes.*\(1001 outputs, background first"):
        background_dropped(1001, 10, "m.tflite", "d")


def test_score_learns_the_classes_from_the_first_outputs_when_the_shape_is_dynamic():
    from edgecnn.errors import BadArgument
    from edgecnn.evaluate import Score

    score = Score(None, 3, "m.onnx", "d")
    assert score.classes is None and score.drop_background is None
    outputs = np.array([[0.1, 0.9, 0.0], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5], [0.0, 0.1, 0.9]], np.float32)
    score.add(outputs[:2], np.array([1, 2]))
    score.add(outputs[2:], np.array([0, 2]))
    assert (score.classes, score.drop_background, score.k) == (3, False, 3)
    assert (score.n, score.top1, score.topk) == (4, 2, 4)
    with pytest.raises(BadArgument, match="^d has label 3, out of range for the 3 classes m.onnx scores$"):
        score.add(outputs[:1], np.array([3]))
    with pytest.raises(BadArgument, match="has 3 outputs but d has 4 classes"):
        Score(None, 4, "m.onnx", "d").add(outputs, np.array([0, 1, 2, 3]))


def test_batch_plan_keeps_a_fixed_onnx_batch_and_lets_tflite_resize():
    from types import SimpleNamespace

    from edgecnn.evaluate import Model, batch_plan
    from edgecnn.runtime import TensorInfo

    def model(fmt, batch):
        info = TensorInfo("input", (batch, 8, 8, 1), "float32")
        return Model(SimpleNamespace(format=fmt), info, (8, 8, 1), "NHWC", 10)

    assert batch_plan(model("onnx", 1), 32) == 1 and batch_plan(model("onnx", -1), 32) == 32
    assert batch_plan(model("onnx", None), 7) == 7 and batch_plan(model("tflite", 1), 32) == 32


def test_warnings_are_held_until_every_check_has_passed_and_all_kept():
    from edgecnn.evaluate import Progress, _Warnings

    shown = []
    progress = Progress()
    progress.warn = shown.append
    warn = _Warnings(progress)
    warn("first")
    assert shown == []  # an error now would stay one line
    warn.release()
    warn("second")
    assert shown == ["first", "second"] and warn.notes == ["first", "second"]


# -- accuracy against the straight-line script -------------------------------------------------


@pytest.mark.parametrize("variant", ["float32", "int8", "uint8", "int16x8", "onnx", "onnx-float16"])
def test_top1_equals_straight_line_script(trained, variant):
    manifest = trained[variant]
    bare = variant == "onnx-float16"  # written here, without a manifest
    row = evaluate_artifact(manifest["path"], FMNIST, preprocess="unit" if bare else "auto")
    x, y = _fashion_float()
    if variant.startswith("onnx"):
        predictions = _ort_top1(manifest["path"], x)
    else:
        predictions = _litert_top1(manifest["path"], x)
    assert row["n"] == 200
    assert row["correct"]["top1"] == int(np.sum(predictions == y))
    assert row["top1"] == pytest.approx(np.mean(predictions == y))
    assert row["top1"] > 0.5  # trained: the comparison is not between two constant answers
    assert row["top5"] >= row["top1"]
    assert row["preprocess"] == {
        "mode": "unit",
        "crop_fraction": 1.0,
        "source": "option" if bare else "manifest",
        "crop_source": "data",
        "input_shape": [28, 28, 1],
        "layout": "NHWC",
    }
    dtype = {"int8": "int8", "uint8": "uint8", "int16x8": "int16", "onnx-float16": "float16"}.get(variant, "float32")
    assert row["input"]["dtype"] == dtype
    if dtype in ("int8", "uint8", "int16"):
        assert row["input"]["scale"] and row["input"]["zero_point"] == manifest["inputs"][0]["zero_point"]
        assert any("calibrated on" in w for w in row["warnings"])  # it was calibrated on FMNIST


def test_quantized_rgb_fixture_equals_straight_line_script(exported_int8, fashion_rgb_npz):
    """int8 input quantized with its own scale/zero point; gray 28x28 replicated and resized
    to 32x32 RGB; the manifest's photo crop (0.875) is not applied to Fashion-MNIST.
    The fixture is trained on these images: its answers vary, so equal counts mean something."""
    assert exported_int8["tflite"]["preprocess"]["crop_fraction"] == 0.875
    x, y = _fashion_rgb32_tf()
    for key, reference in (("tflite", _litert_top1), ("onnx", _ort_top1)):
        row = evaluate_artifact(exported_int8[key]["path"], fashion_rgb_npz, limit=64, batch_size=16)
        predictions = reference(exported_int8[key]["path"], x[:64])
        assert len(np.unique(predictions)) >= 3 and np.mean(predictions == y[:64]) > 0.3, key
        assert row["n"] == 64
        assert row["correct"]["top1"] == int(np.sum(predictions == y[:64])), key
        assert row["preprocess"]["crop_fraction"] == 1.0
        assert row["preprocess"]["input_shape"] == [32, 32, 3]
        assert row["quantization"] == "int8" and row["format"] == key
    assert row["input"]["dtype"] == "float32"  # ONNX keeps float inputs
    tflite_row = evaluate_artifact(exported_int8["tflite"]["path"], fashion_rgb_npz, limit=8)
    assert tflite_row["input"]["dtype"] == "int8"
    assert tflite_row["input"]["zero_point"] == exported_int8["tflite"]["inputs"][0]["zero_point"]


def test_1001_outputs_drop_the_background_class(tiny_models):
    row = evaluate_artifact(tiny_models["background"], IMAGENET16, preprocess="tf")
    labels = tiny_models["labels"]
    assert row["classes"] == 1001 and row["background_class_dropped"] is True
    assert row["n"] == len(labels) == 16
    # Every image gets the bias: first choice labels[0], then labels[1..4].
    assert row["correct"] == {"top1": 1, "top5": 5}
    assert row["data"]["num_classes"] == 1000


def test_batch_refused_falls_back_to_one_at_a_time(tiny_models):
    row = evaluate_artifact(tiny_models["batch1"], FMNIST, preprocess="unit", limit=40, batch_size=16)
    assert row["n"] == 40 and row["batch_size"] == 1
    assert len([w for w in row["warnings"] if "one image at a time" in w]) == 1  # once, not once per batch
    x, y = _fashion_float(unit=False)
    pixels = np.stack([np.asarray(Image.fromarray(im, "L").resize((8, 8), Image.BILINEAR)) for im in x[:40]])
    predictions = _litert_top1(tiny_models["batch1"], pixels[..., None].astype(np.float32) / 255.0)
    assert row["correct"]["top1"] == int(np.sum(predictions == y[:40]))


def test_nchw_onnx(tiny_models, fashion_rgb_npz):
    row = evaluate_artifact(tiny_models["nchw"], fashion_rgb_npz, preprocess="raw", limit=50)
    assert row["preprocess"]["layout"] == "NCHW" and row["preprocess"]["input_shape"] == [16, 16, 3]
    x, y = _fashion_float(unit=False)
    rgb = np.stack(
        [np.asarray(Image.fromarray(im, "L").convert("RGB").resize((16, 16), Image.BILINEAR)) for im in x[:50]]
    ).astype(np.float32)
    predictions = _ort_top1(tiny_models["nchw"], np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
    assert row["correct"]["top1"] == int(np.sum(predictions == y[:50]))


def test_crop_fraction_option(trained):
    """`crop_fraction=0.5` crops the centre 14x14 of each 28x28 image and scales it back up: the
    count is a straight-line script's on such images, and differs from the uncropped one."""
    row = evaluate_artifact(trained["float32"]["path"], FMNIST, limit=100, crop_fraction=0.5)
    assert row["preprocess"]["crop_fraction"] == 0.5 and row["preprocess"]["crop_source"] == "option"
    x, y = _fashion_float(unit=False)
    cropped = (
        np.stack(
            [
                np.asarray(Image.fromarray(im, "L").resize((28, 28), Image.BILINEAR, box=(7, 7, 21, 21)))
                for im in x[:100]
            ]
        )[..., None].astype(np.float32)
        / 255.0
    )
    predictions = _litert_top1(trained["float32"]["path"], cropped)
    assert row["correct"]["top1"] == int(np.sum(predictions == y[:100]))
    whole = evaluate_artifact(trained["float32"]["path"], FMNIST, limit=100)
    assert whole["preprocess"]["crop_fraction"] == 1.0
    assert whole["correct"]["top1"] != row["correct"]["top1"]


# -- the command ---------------------------------------------------------------------------------


def test_cli_json_row_and_limit(trained):
    manifest = trained["float32"]
    result = runner.invoke(
        app, ["evaluate", manifest["path"], "--data", str(FMNIST), "--limit", "50", "--threads", "1", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["schema"] == EVALUATE_SCHEMA
    assert row["n"] == 50 and 0.0 <= row["top1"] <= row["top5"] <= 1.0
    assert row["sha256"] == manifest["sha256"]
    assert row["artifact_name"] == Path(manifest["path"]).name
    assert row["format"] == "tflite" and row["quantization"] == "float32" and row["model"] == "fmnist_cnn"
    assert row["data"]["kind"] == "npz" and row["data"]["path"] == str(FMNIST)
    assert row["runtime"] == "litert" and row["runtime_version"] and row["threads"] == 1
    assert row["preprocess"]["source"] == "manifest"
    assert row["host"]["cpu"] and row["created"] and row["seconds"] >= 0


def test_cli_table_and_out_appends(trained, tmp_path):
    results = tmp_path / "runs" / "results.jsonl"
    args = ["evaluate", trained["int8"]["path"], "--data", str(FMNIST), "--limit", "20", "--out", str(results)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert "top-1" in first.stdout and "top-5" in first.stdout and "20" in first.stdout
    second = runner.invoke(app, [*args, "--json"])
    assert second.exit_code == 0, second.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["top1"] == rows[1]["top1"] and rows[1] == json.loads(second.stdout)


def test_cli_preprocess_option_for_a_bare_file(trained, tmp_path):
    bare = tmp_path / "bare.tflite"
    shutil.copy(trained["float32"]["path"], bare)
    result = runner.invoke(app, ["evaluate", str(bare), "--data", str(FMNIST)])
    assert result.exit_code == 2
    assert "--preprocess" in one_error_line(result)
    result = runner.invoke(app, ["evaluate", str(bare), "--data", str(FMNIST), "--preprocess", "unit", "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["preprocess"]["source"] == "option" and row["model"] is None
    assert row["top1"] == evaluate_artifact(trained["float32"]["path"], FMNIST)["top1"]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "not-a-model-tflite",
        "not-a-model-onnx",
        "wrong-suffix",
        "unlabelled",
        "caffe-on-gray",
        "class-mismatch",
        "bad-data",
    ],
)
def test_cli_bad_input_is_one_line(trained, tmp_path, case):
    model = trained["float32"]["path"]
    data = str(FMNIST)
    extra = []
    expected = {
        "missing": "no such file",
        "not-a-model-tflite": "not a loadable TFLite model",
        "not-a-model-onnx": "not a loadable ONNX model",
        "wrong-suffix": "not a .tflite or .onnx",
        "unlabelled": "unlabelled",
        "caffe-on-gray": "3 channels",
        "class-mismatch": "1000 classes",
        "bad-data": "not found",
    }[case]
    code = {"missing": 1, "not-a-model-tflite": 1, "not-a-model-onnx": 1}.get(case, 2)
    if case == "missing":
        model = str(tmp_path / "nothing.tflite")
    elif case.startswith("not-a-model"):
        model = tmp_path / ("junk.tflite" if case.endswith("tflite") else "junk.onnx")
        model.write_bytes(b"this is not a model" * 50)
        extra = ["--preprocess", "tf"]
    elif case == "wrong-suffix":
        model = tmp_path / "model.txt"
        model.write_text("x")
    elif case == "unlabelled":
        folder = tmp_path / "photos"
        folder.mkdir()
        for i in range(2):
            Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(folder / f"{i}.png")
        data = str(folder)
    elif case == "caffe-on-gray":
        extra = ["--preprocess", "caffe"]
    elif case == "class-mismatch":
        data = str(IMAGENET16)
    elif case == "bad-data":
        data = str(tmp_path / "no-such-data")
    result = runner.invoke(app, ["evaluate", str(model), "--data", data, *extra])
    assert result.exit_code == code
    line = one_error_line(result)
    assert line.startswith("error:") and expected in line, line
    assert "calibration data" not in line  # evaluate's data is not calibration data
    assert result.stdout == ""


# -- the runtime side ------------------------------------------------------------------------------


def test_evaluate_never_imports_tensorflow(exported_int8, fashion_rgb_npz):
    """`edgecnn evaluate` runs on a Raspberry Pi with numpy, Pillow, typer, rich and the runtimes."""
    code = f"""
import json, sys
from edgecnn.evaluate import evaluate_artifact
for path in ({exported_int8["tflite"]["path"]!r}, {exported_int8["onnx"]["path"]!r}):
    row = evaluate_artifact(path, {str(fashion_rgb_npz)!r}, limit=8)
    assert row["n"] == 8, row
from typer.testing import CliRunner
from edgecnn.cli import app
result = CliRunner().invoke(app, ["evaluate", {exported_int8["tflite"]["path"]!r}, "--data",
                                  {str(fashion_rgb_npz)!r}, "--limit", "4", "--json"])
assert result.exit_code == 0, result.output
assert json.loads(result.stdout)["n"] == 4
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tf2onnx"))
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
