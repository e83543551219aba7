"""Regression tests for what the adversarial bad-input pass over every command found (issue 12).

Each test pins one case that the pass saw fail: a Python exception name on stderr, a wrong exit
code, or a number that came out silently wrong. The cases that already passed are covered by
tests/test_cli_validation.py, tests/test_malformed_inputs.py, tests/test_untrusted_models.py and
tests/test_export_cleanup.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import BadArgument

runner = CliRunner()


# ------------------------------------------------------------- labels of an .npz, read as given


def test_a_column_of_labels_is_read_as_labels_not_as_one_hot(tmp_path):
    """keras.datasets gives CIFAR's labels as an (n, 1) column; argmax over its one column made
    every label 0, and evaluate reported the share of class 0 as top-1 without a word."""
    from calibration.sources import open_npz

    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    np.savez(tmp_path / "column.npz", x=np.zeros((8, 28, 28), np.uint8), y=labels[:, None])
    _, y = open_npz(tmp_path / "column.npz").load_arrays()
    assert sorted(y.tolist()) == sorted(labels.tolist())

    one_hot = np.eye(10, dtype=np.uint8)[labels]  # real one-hot rows still work
    np.savez(tmp_path / "onehot.npz", x=np.zeros((8, 28, 28), np.uint8), y=one_hot)
    _, y = open_npz(tmp_path / "onehot.npz").load_arrays()
    assert sorted(y.tolist()) == sorted(labels.tolist())


@pytest.mark.parametrize(
    "labels",
    [np.full((8, 3), 0.2), np.ones((8, 4), np.int64), np.zeros((8, 2), np.int64)],
    ids=["scores", "several-ones", "no-one"],
)
def test_two_d_labels_that_are_not_one_hot_are_refused(tmp_path, labels):
    from calibration.sources import open_npz

    np.savez(tmp_path / "bad.npz", x=np.zeros((8, 28, 28), np.uint8), y=labels)
    with pytest.raises(BadArgument, match="must be one-hot"):
        open_npz(tmp_path / "bad.npz").load_arrays()


@pytest.mark.parametrize("case", ["npy-named-npz", "text", "empty", "no-images"])
def test_an_npz_that_is_not_one_or_holds_no_images_is_one_clear_refusal(tmp_path, case):
    """An .npy saved under an .npz name crashed with `TypeError: 'numpy.ndarray' object does not
    support the context manager protocol`; a text file was called "pickled (object) data"; zero
    images reached the converter as `ValueError: Expected input data to be non-empty`."""
    from calibration.sources import open_npz

    path = tmp_path / "data.npz"
    if case == "npy-named-npz":
        with open(path, "wb") as handle:
            np.save(handle, np.zeros((4, 28, 28), np.uint8))
    elif case == "text":
        path.write_text("not a zip")
    elif case == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, x=np.zeros((0, 28, 28), np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(BadArgument, match="holds no images" if case == "no-images" else "is not an .npz"):
        open_npz(path)
    result = runner.invoke(
        app, ["export", "lenet5", "--int8", "--weights", "none", "--calib", str(path), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    one_error_line(result)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- sizes too large to estimate


def test_an_alpha_too_large_for_the_estimate_is_refused_not_an_overflow(monkeypatch):
    """`profile mobilenet_v2 --alpha 1e308` printed `error: OverflowError: (34, 'Numerical result
    out of range')` with exit 1: alpha squared overflows a float in the memory estimate."""
    import edgecnn.profiler as profiler

    small = SimpleNamespace(
        peak_activation_bytes=1000, params=5000, layers=(SimpleNamespace(name="predictions", params=100),)
    )
    monkeypatch.setattr(profiler, "profile_zoo_model", lambda *a, **k: small)  # no builds: the arithmetic alone
    with pytest.raises(BadArgument, match="--alpha 1e\\+308: mobilenet_v2 would be too large"):
        profiler.check_zoo_memory("mobilenet_v2", alpha=1e308)


# ------------------------------------------------------------- the model gate: string activations


def _lenet_archive(tmp_path):
    from edgecnn._tf import import_keras
    from edgecnn.models import create_model

    import_keras()
    path = tmp_path / "lenet5.keras"
    create_model("lenet5", input_shape=(32, 32, 1), classes=10).save(path)
    return path


@pytest.mark.parametrize("activation", ["deserialize", "keras_export", "os.system", "get"])
def test_a_string_activation_off_the_allowlist_is_refused(tmp_path, activation):
    """A plain-string activation is looked up among *all* callables of tf_keras's activations
    module (`deserialize` was found and called on the tensors while loading) and was never checked."""
    import json
    import zipfile

    from edgecnn.model_gate import UntrustedModel, check_model_file

    clean = _lenet_archive(tmp_path)
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(clean) as original, zipfile.ZipFile(crafted, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["config"]["activation"] = activation
                data = json.dumps(config).encode()
            copy.writestr(item, data)
    check_model_file(clean)  # the zoo's own strings ('relu', 'softmax') pass
    with pytest.raises(UntrustedModel, match=f"names activation '{activation}'"):
        check_model_file(crafted)
    result = runner.invoke(app, ["profile", str(crafted)])
    assert result.exit_code == 1
    assert "--trust-model" in one_error_line(result)


# ------------------------------------------------------------- benchmark --data of an .npy that is not one


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A float (1, 4) -> (1, 4) ONNX graph: enough for the harness to read --data against."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("case", ["empty", "npz-named-npy"])
def test_benchmark_data_npy_that_is_not_one_is_one_line(tiny_onnx, tmp_path, case):
    """An empty .npy gave `error: ...: EOFError: No data left in file`; an .npz under an .npy name
    reached `.shape` of an NpzFile."""
    data = tmp_path / "inputs.npy"
    if case == "empty":
        data.write_bytes(b"")
    else:
        with open(data, "wb") as handle:
            np.savez(handle, x=np.zeros((2, 4), np.float32))
    result = runner.invoke(
        app, ["benchmark", str(tiny_onnx), "--data", str(data), "--runs", "1", "--min-secs", "0", "--warmup-secs", "0"]
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "cannot read --data" in line and "Error" not in line


def test_benchmark_data_npy_that_is_good_still_runs(tiny_onnx, tmp_path):
    data = tmp_path / "inputs.npy"
    np.save(data, np.ones((3, 4), np.float32))
    result = runner.invoke(
        app,
        [
            "benchmark",
            str(tiny_onnx),
            "--data",
            str(data),
            "--runs",
            "1",
            "--min-secs",
            "0",
            "--warmup-secs",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------- training data: no calibration warning before the error


@pytest.mark.parametrize(
    "command",
    [
        ["train", "lenet5", "--dataset", "random", "--epochs", "1"],
        ["prune", "lenet5", "--dataset", "random", "--sparsity", "0.5", "--epochs", "1"],
        ["export", "lenet5", "--int8", "--qat", "--dataset", "random", "--weights", "none"],
    ],
    ids=["train", "prune", "export-qat"],
)
def test_random_as_training_data_is_one_line_without_a_python_warning(tmp_path, command):
    """`train --dataset random` printed Python's own warning format first (a file path of
    edgecnn/training/data.py, the source line, `CalibrationWarning: calibrating on random noise`),
    then the error: three lines, one of them source code. A real process, so pytest's warning
    capture cannot hide the line."""
    import subprocess
    import sys

    out = tmp_path / ("out" if command[0] == "export" else "m.keras")
    result = subprocess.run(
        [sys.executable, "-m", "edgecnn", *command, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "holds no labels" in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- a failure inside a traced Keras step, on one line


def test_a_failure_inside_model_fit_is_reported_by_its_reason_not_tensorflows_frames():
    """`prune --structured 1:99999999999` ended in `error: training failed: in user code: File
    "/root/.pyenv/.../tf_keras/src/engine/training.py", line 1398, in train_function * return
    step_function(...` cut at 300 characters: frames of TensorFlow, not the reason."""
    from edgecnn.training.train import _error_reason

    traced = ValueError(
        "in user code:\n\n"
        '    File "/x/tf_keras/src/engine/training.py", line 1398, in train_function  *\n'
        "        return step_function(self, iterator)\n\n"
        "    TypeError: Input 'y' of 'Less' Op has type int64 that does not match type int32 "
        "of argument 'x'.\n"
    )
    assert _error_reason(traced) == (
        "Input 'y' of 'Less' Op has type int64 that does not match type int32 of argument 'x'."
    )
    assert (
        _error_reason(ValueError("Shapes (None, 3) and (None, 10) are incompatible"))
        == "Shapes (None, 3) and (None, 10) are incompatible"
    )
    assert _error_reason(ValueError("")) == "ValueError"


# ------------------------------------------------------------- inspect


def test_inspect_names_why_an_onnx_file_does_not_parse_not_the_exception_class(tmp_path):
    """`inspect random.onnx` said `is not a readable ONNX model: DecodeError`."""
    path = tmp_path / "random.onnx"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "not a readable ONNX model" in line and "DecodeError" not in line


def test_inspect_reference_that_does_not_parse_names_the_reason(tiny_onnx, tmp_path):
    """`inspect q.onnx --reference random.onnx --data ...` said `is not a loadable ONNX model: DecodeError`
    (edgecnn/numerics.py's own onnx.load)."""
    from edgecnn.errors import EdgecnnError
    from edgecnn.numerics import layer_errors

    broken = tmp_path / "random.onnx"
    broken.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)))
    with pytest.raises(EdgecnnError) as error:
        layer_errors(tiny_onnx, broken, np.zeros((2, 4), np.float32))
    assert "not a loadable ONNX model" in str(error.value) and "DecodeError" not in str(error.value)


def test_inspect_refuses_an_unknown_preprocess_mode_even_without_data(tiny_onnx):
    """`inspect model.onnx --preprocess evil` printed the report with exit 0."""
    result = runner.invoke(app, ["inspect", str(tiny_onnx), "--preprocess", "evil"])
    assert result.exit_code == 2
    assert "--preprocess" in one_error_line(result)


# ------------------------------------------------------------- tune


@pytest.mark.parametrize(
    "args, option",
    [
        (["--seed", "-1"], "--seed"),
        (["--seed", "4294967296"], "--seed"),
        (["--max-float-layers", "-1"], "--max-float-layers"),
    ],
)
def test_tune_refuses_a_seed_out_of_range_before_reading_anything(tmp_path, args, option):
    """`tune --seed -1` got as far as numpy: `error: ValueError: expected non-negative integer`, exit 1."""
    result = runner.invoke(app, ["tune", "lenet5", "--data", "fashion-mnist", "--out", str(tmp_path / "tuned"), *args])
    assert result.exit_code == 2
    assert one_error_line(result).startswith(f"error: {option} must be")
    assert not (tmp_path / "tuned").exists()


# ------------------------------------------------------------- compare: numbers that are not measurements


def _evaluate_row(**changes) -> dict:
    row = {
        "schema": "edgecnn.evaluate/1",
        "artifact": "m.tflite",
        "artifact_name": "m.tflite",
        "sha256": "ab" * 32,
        "format": "tflite",
        "model": "lenet5",
        "quantization": "int8",
        "n": 200,
        "top1": 0.5,
        "top5": 0.9,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"top1": 7.5}, "`top1` 7.5 is not a fraction in [0, 1]"),
        ({"top5": -0.1}, "`top5` -0.1 is not a fraction in [0, 1]"),
        ({"top1": float("inf")}, "`top1` inf is not a finite number"),
        ({"top1": float("nan")}, "`top1` nan is not a finite number"),
    ],
    ids=["top1-7.5", "top5-negative", "top1-inf", "top1-nan"],
)
def test_compare_skips_an_accuracy_that_is_not_a_fraction(tmp_path, changes, message):
    """A row with `top1` 7.5 was printed as a top-1 of 750.00%, Infinity as `inf%` (exit 0, no word):
    JSON lines may carry NaN and Infinity, which Python's json reads as numbers."""
    import json

    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_evaluate_row(sha256="cd" * 32)) + "\n" + json.dumps(_evaluate_row(**changes)) + "\n")
    result = runner.invoke(app, ["compare", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and "line 2" in warnings[0] and message in warnings[0], result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["top1"] == 0.5


# ------------------------------------------------------------- export --io refused before TensorFlow loads


@pytest.mark.parametrize("args", [["--io", "uint8"], ["--int8", "--io", "int16"], ["--int16x8", "--io", "int8"]])
def test_an_io_that_does_not_fit_is_refused_without_importing_tensorflow(tmp_path, args):
    """The --io table lived beside `import tensorflow` in converters/tflite.py: the refusal (right,
    one line, exit 2) came after TensorFlow loaded, 50-60 s on a busy two-core machine."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom edgecnn.cli import app\n"
        f"r = CliRunner().invoke(app, ['export', 'lenet5', '--weights', 'none', *{args!r}, "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
        "assert r.exit_code == 2, r.output\nassert 'does not apply to' in r.stderr, r.stderr\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported to refuse --io'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- train --out into a folder that takes no files


def test_train_out_in_a_folder_that_takes_no_files_is_refused_before_training(tmp_path):
    """As root `os.access` says yes everywhere: `train --out /proc/m.keras` trained, then failed saving
    with `No such file or directory: /proc/.m.xhj20se2.keras` (the temporary name)."""
    from edgecnn.errors import EdgecnnError
    from edgecnn.training.train import check_out

    with pytest.raises(EdgecnnError, match="takes no files"):
        check_out("/proc/m.keras")
    assert check_out(tmp_path / "sub" / "m.keras") == tmp_path / "sub" / "m.keras"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing, and no folder is created


def test_a_broken_onnx_file_is_one_line_without_onnx_runtimes_code_prefix(tmp_path):
    """benchmark of a truncated .onnx: one failed row whose reason is ONNX Runtime's sentence, without
    its `[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :` prefix (read as an exception name)."""
    import edgecnn.cli.benchmark  # noqa: F401  (registers `benchmark`)
    from edgecnn.cli import app

    path = tmp_path / "trunc.onnx"
    path.write_bytes(b"\x08\x07\x12\x04edge" * 3)
    result = CliRunner().invoke(app, ["benchmark", str(path), "--runs", "1", "--min-secs", "0", "--warmup-secs", "0"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a loadable ONNX model" in lines[0], result.stderr
    assert "ONNXRuntimeError" not in lines[0] and "INVALID_PROTOBUF" not in lines[0]
