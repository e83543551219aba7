"""`edgecnn export` as a command: option mapping, JSON output, one-line failures."""

import contextlib
import json
from pathlib import Path

import pytest
from _helpers import one_error_line, one_stderr_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.export import ExportRequest

runner = CliRunner()


def test_two_quantization_flags_exit_2(tmp_path):
    result = runner.invoke(app, ["export", "lenet5", "--int8", "--float16", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--int8 and --float16" in one_error_line(result)


def test_unknown_model_exit_2_with_suggestion(tmp_path):
    result = runner.invoke(app, ["export", "mobilenetv3", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Did you mean" in one_error_line(result)


def test_bad_format_exit_2(tmp_path):
    result = runner.invoke(app, ["export", "lenet5", "--format", "coreml", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--format" in one_error_line(result)


def test_empty_calibration_folder_fails_cleanly(tmp_path):
    empty = tmp_path / "calib"
    empty.mkdir()
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "lenet5", "--int8", "--calib", str(empty), "--out", str(out)])
    assert result.exit_code == 2  # a --calib that cannot work
    one_error_line(result)
    assert not out.exists() or list(out.iterdir()) == []


def test_corrupt_keras_file_exit_1(tmp_path):
    corrupt = tmp_path / "broken.keras"
    corrupt.write_text("garbage")
    result = runner.invoke(app, ["export", str(corrupt), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "broken.keras" in one_error_line(result)


@pytest.mark.slow
def test_json_lists_manifests(tmp_path):
    result = runner.invoke(
        app, ["export", "lenet5", "--weights", "none", "--calib-samples", "4", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    (manifest,) = json.loads(result.stdout)
    assert manifest["model"] == "lenet5" and manifest["quantization"] == "float32"
    assert (tmp_path / "lenet5-float32" / "manifest.json").is_file()


# -- option mapping: the command builds one ExportRequest and calls export() once ------------------


class _Calls(list):
    """The requests export() was called with; `stages` the library calls in order."""

    stages: list


@pytest.fixture
def captured(monkeypatch):
    """Replace the library calls; record the requests the command makes."""
    requests = _Calls()
    requests.stages = []

    def fake_build(request, progress=None):
        requests.stages.append(("build_model", request.model))
        return "built"

    def fake_qat(built, request, progress=None):
        requests.stages.append(("quantization_aware", built))
        return "built, quantization-aware"

    def fake_export(request, progress=None, *, model=None, out=None):
        requests.stages.append(("export", model) if out is None else ("export", model, out))
        requests.append(request)
        return []

    @contextlib.contextmanager
    def fake_reserve(request):
        requests.stages.append(("reserve", request.model))
        yield "locked --out"

    monkeypatch.setattr("edgecnn.export.build_model", fake_build)
    monkeypatch.setattr("edgecnn.export.quantization_aware", fake_qat)
    monkeypatch.setattr("edgecnn.export.export", fake_export)
    monkeypatch.setattr("edgecnn.export.reserve", fake_reserve)
    return requests


def test_cli_maps_every_option(captured, tmp_path):
    result = runner.invoke(
        app,
        [
            "export",
            "lenet5",
            "--int16x8",
            "--format",
            "all",
            "--weights",
            "none",
            "--input-size",
            "40",
            "--alpha",
            "0.5",
            "--classes",
            "7",
            "--calib",
            "fashion-mnist",
            "--calib-samples",
            "12",
            "--calib-method",
            "entropy",
            "--io",
            "int16",
            "--preprocess",
            "unit",
            "--out",
            str(tmp_path),
            "--seed",
            "3",
            "--trust-model",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    (request,) = captured
    assert request == ExportRequest(
        model="lenet5",
        quantization="int16x8",
        formats=("tflite", "onnx"),
        weights="none",
        input_size=40,
        alpha=0.5,
        classes=7,
        calib="fashion-mnist",
        calib_samples=12,
        calib_method="entropy",
        io="int16",
        preprocess="unit",
        out=tmp_path,
        seed=3,
        trust_model=True,
    )
    assert captured.stages == [("export", None)]  # export builds the model itself


def test_cli_maps_the_qat_options(captured, tmp_path):
    result = runner.invoke(
        app,
        [
            "export",
            "model.keras",
            "--int8",
            "--qat",
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "3",
            "--qat-lr",
            "0.001",
            "--qat-batch-size",
            "16",
            "--qat-limit",
            "100",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    (request,) = captured
    assert request == ExportRequest(
        model="model.keras",
        quantization="int8",
        out=tmp_path,
        qat=True,
        qat_dataset="fashion-mnist",
        qat_epochs=3,
        qat_lr=0.001,
        qat_batch_size=16,
        qat_limit=100,
    )
    # model -> optimize -> convert: the QAT stage runs on the built model, export takes its result
    # --out is locked first, so a second export of the same artifact is refused before training
    assert captured.stages == [
        ("reserve", "model.keras"),
        ("build_model", "model.keras"),
        ("quantization_aware", "built"),
        ("export", "built, quantization-aware", "locked --out"),
    ]


def test_a_busy_artifact_is_refused_before_qat_trains(tmp_path, monkeypatch):
    from edgecnn.export import _acquire_lock, _release_lock
    from edgecnn.export.request import _folder_names

    def no_build(request, progress=None):
        raise AssertionError("the model was built while another export held the artifact")

    monkeypatch.setattr("edgecnn.export.build_model", no_build)
    out = tmp_path / "out"
    out.mkdir()
    (name,) = _folder_names(
        ExportRequest(
            model="lenet5", quantization="int8", qat=True, qat_dataset="fashion-mnist", weights="none", out=out
        )
    )
    lock = out / f".{name}.lock"
    fd = _acquire_lock(lock)
    assert fd is not None
    try:
        result = runner.invoke(
            app,
            [
                "export",
                "lenet5",
                "--int8",
                "--qat",
                "--dataset",
                "fashion-mnist",
                "--weights",
                "none",
                "--out",
                str(out),
            ],
        )
    finally:
        _release_lock(lock, fd)
    assert result.exit_code == 1, result.output
    assert "another export" in one_error_line(result)


def test_cli_defaults_are_the_library_defaults(captured):
    """Options left out keep ExportRequest's own defaults (the CLI restates none of them)."""
    result = runner.invoke(app, ["export", "lenet5", "--json"])
    assert result.exit_code == 0, result.stderr
    assert captured == [ExportRequest(model="lenet5")]
    assert captured[0].out == Path("artifacts") and captured[0].weights == "auto"


@pytest.mark.parametrize(
    "flags, quantization",
    [
        ([], "float32"),
        (["--int8"], "int8"),
        (["--float16"], "float16"),
        (["--dynamic"], "dynamic"),
        (["--int16x8"], "int16x8"),
    ],
)
@pytest.mark.parametrize("fmt, formats", [("tflite", ("tflite",)), ("onnx", ("onnx",)), ("all", ("tflite", "onnx"))])
def test_cli_maps_quantization_and_format(captured, flags, quantization, fmt, formats):
    result = runner.invoke(app, ["export", "lenet5", *flags, "--format", fmt, "--json"])
    assert result.exit_code == 0, result.stderr
    (request,) = captured
    assert (request.quantization, request.formats) == (quantization, formats)


@pytest.mark.parametrize("args", [["--epochs", "2"], ["--dataset", "fashion-mnist"], ["--qat-limit", "5"]])
def test_qat_options_without_qat_exit_2_before_the_library(captured, args):
    result = runner.invoke(app, ["export", "lenet5", "--int8", *args])
    assert result.exit_code == 2
    assert "--qat" in one_error_line(result)
    assert captured == []


# -- --weights auto: ImageNet when cached or downloadable, else random weights with a warning -------


@pytest.fixture
def downloads(monkeypatch):
    """Keras's downloader replaced: the calls it got (it fails each, as offline)."""
    from edgecnn._tf import import_keras

    calls = []

    def get_file(*args, **kwargs):
        calls.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(import_keras().utils, "get_file", get_file)
    return calls


@pytest.mark.slow
def test_weights_auto_offline_falls_back_to_random_with_one_warning(tmp_path, monkeypatch, downloads):
    """MobileNetV2 0.35 at 96x96 has published ImageNet weights; with EDGECNN_OFFLINE and an empty
    Keras cache, `--weights auto` exports random weights, says so once, and fetches nothing."""
    monkeypatch.setenv("EDGECNN_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    result = runner.invoke(
        app,
        [
            "export",
            "mobilenet_v2",
            "--input-size",
            "96",
            "--alpha",
            "0.35",
            "--calib-samples",
            "4",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    line = one_stderr_line(result, "warning: ")  # the warning, alone
    assert line.startswith("warning:") and "random weights" in line
    assert "offline" in line.lower()
    (manifest,) = json.loads(result.stdout)
    assert manifest["weights"] == "random" and manifest["labels"] is None
    assert manifest["options"]["weights"] == "auto"
    assert len(manifest["warnings"]) == 1 and "random weights" in manifest["warnings"][0]
    assert manifest["outputs"][0]["shape"][-1] == 1000
    assert downloads == []  # EDGECNN_OFFLINE: not even an attempt


def test_weights_auto_without_published_weights_warns_and_exports_random(tmp_path, downloads):
    result = runner.invoke(app, ["export", "lenet5", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    line = one_stderr_line(result, "warning: ")
    assert "no ImageNet weights for lenet5" in line and "random weights" in line
    (manifest,) = json.loads(result.stdout)
    assert manifest["weights"] == "random" and manifest["warnings"] == [line.split("warning:", 1)[1].strip()]
    assert downloads == []


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_json_output_stays_json_with_histogram_calibration(tmp_path, method):
    """ONNX Runtime's entropy and percentile calibrators print their progress on stdout, which
    `--json` owns: the export mutes it (a real export, LeNet-5 ONNX int8 on 8 images)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "edgecnn", "export", "lenet5", "--int8", "--format", "onnx"]
        + ["--calib-method", method, "--calib-samples", "8", "--out", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (manifest,) = json.loads(done.stdout)
    assert manifest["calibration_method"] == method
