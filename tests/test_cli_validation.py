"""Bad input is refused before any work: one line on stderr, exit 2, nothing on disk.

Usage errors of Click/Typer (every command, through edgecnn.cli.OneLineGroup), numeric options
out of range (checked by the library, so Python callers get the same BadArgument), and the
help screens (no `<bool>` beside flags, no sentence broken mid-line).
"""

from pathlib import Path

import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app, reflow_help
from edgecnn.errors import BadArgument, check_int, check_number, check_seed

runner = CliRunner()


# -- usage errors: one line, exit 2, for every command ------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (["export", "lenet5", "--input-size", "abc"], "error: --input-size: 'abc' is not an integer"),
        (["export", "mobilenet_v2", "--alpha", "wide"], "error: --alpha: 'wide' is not a number"),
        (["export", "lenet5", "--no-such-option"], "error: no such option --no-such-option"),
        (["export"], "error: missing argument MODEL"),
        (["export", "lenet5", "extra"], "error: got unexpected extra argument"),
        (["train", "lenet5"], "error: missing option --dataset"),
        (
            ["prune", "lenet5", "--dataset", "fashion-mnist", "--epochs", "two"],
            "error: --epochs: 'two' is not an integer",
        ),
        (
            ["cluster", "lenet5", "--dataset", "fashion-mnist", "--clusters", "2.5"],
            "error: --clusters: '2.5' is not an integer",
        ),
        (["profile", "lenet5", "--classes", "ten"], "error: --classes: 'ten' is not an integer"),
        (["models", "--verbose"], "error: no such option --verbose"),
        (["benchmark"], "error: missing argument ARTIFACTS"),
        # Path('') is '.': without the check, `--out ''` wrote into the current folder.
        (["export", "lenet5", "--out", ""], "error: --out: an empty value; give one"),
        (["export", "lenet5", "--out="], "error: --out: an empty value; give one"),
        (["tune", "lenet5", "--out", ""], "error: --out: an empty value; give one"),
        (["evaluate", ""], "error: an empty argument; give a value"),
        (["exprot", "lenet5"], "error: no such command 'exprot'"),
        (["--no-such-root-option"], "error: no such option --no-such-root-option"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert one_error_line(result).startswith(expected)


def test_every_registered_command_gets_one_line_usage_errors():
    """The mechanism is the group's, so commands added later (inspect, tune) get it too."""
    import typer.main

    group = typer.main.get_command(app)
    names = sorted(group.commands)
    assert {"export", "train", "prune", "cluster", "profile", "models"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--definitely-not-an-option"])
        assert result.exit_code == 2, name
        assert one_error_line(result).startswith("error: no such option --definitely-not-an-option"), name


def test_help_still_works_and_no_args_shows_help():
    for args in (["--help"], ["export", "--help"], ["prune", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "Usage: edgecnn" in result.output
    bare = runner.invoke(app, [])
    assert "Usage: edgecnn" in bare.output and "export" in bare.output


def test_help_shows_no_bool_beside_flags():
    for args in (["--help"], ["export", "--help"], ["cluster", "--help"]):
        result = runner.invoke(app, args, env={"COLUMNS": "100"})
        assert result.exit_code == 0
        assert "<bool>" not in result.output, args
    export_help = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "100"}).output
    assert "<int>" in export_help  # options that take a value keep their type


def test_prune_and_cluster_descriptions_do_not_break_mid_sentence():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    lines = {
        line.split("│")[1].split()[0]: line
        for line in result.output.splitlines()
        if line.startswith("│ ") and len(line.split("│")[1].split()) > 1
    }
    for name in ("prune", "cluster"):
        assert name in lines
        text = lines[name].split(name, 1)[1].strip(" │")
        assert text.endswith("."), text  # the whole one-line summary fits on one row at 200 columns
    detail = runner.invoke(app, ["prune", "--help"], env={"COLUMNS": "200"}).output
    body = [line.strip() for line in detail.splitlines()]
    assert any(
        line.startswith("Pruning is prune_low_magnitude, then strip_pruning.") and line.endswith("model's.")
        for line in body
    ), detail


def test_reflow_keeps_lists_and_joins_broken_sentences():
    docstring = """One sentence
    broken here.

    Next paragraph
    too.
    """
    assert reflow_help(docstring) == "One sentence broken here.\n\nNext paragraph too."
    text = "Items:\n- first\n- second"
    assert reflow_help(text) == text


# -- numeric ranges, in the library -------------------------------------------------------------
def test_range_checks_name_the_option_and_the_value():
    with pytest.raises(BadArgument, match=r"^--input-size must be at least 16\. Received 0$"):
        check_int(0, "--input-size", minimum=16)
    with pytest.raises(BadArgument, match="--epochs must be an integer"):
        check_int(1.5, "--epochs", minimum=1)
    with pytest.raises(BadArgument, match="--epochs must be an integer"):
        check_int(True, "--epochs", minimum=1)
    for bad in (float("inf"), float("-inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(BadArgument, match="--alpha must be a finite number > 0"):
            check_number(bad, "--alpha", above=0)
    with pytest.raises(BadArgument, match=r"--sparsity must be a finite number >= 0 and < 1"):
        check_number(1.0, "--sparsity", minimum=0, below=1)
    assert check_number(0.0, "--sparsity", minimum=0, below=1) == 0.0
    with pytest.raises(BadArgument, match="--seed"):
        check_seed(-1)
    with pytest.raises(BadArgument, match="--seed"):
        check_seed(2**32)
    assert check_seed(2**32 - 1) == 2**32 - 1


EXPORT_CASES = [
    (["lenet5", "--input-size", "0"], "--input-size must be at least 16. Received 0"),
    (["lenet5", "--input-size", "-5"], "--input-size must be at least 16. Received -5"),
    (["lenet5", "--input-size", "8"], "--input-size must be at least 16"),
    (["mobilenet_v2", "--alpha", "inf"], "--alpha must be a finite number > 0. Received inf"),
    (["mobilenet_v2", "--alpha", "nan"], "--alpha must be a finite number > 0. Received nan"),
    (["mobilenet_v2", "--alpha", "0"], "--alpha must be a finite number > 0"),
    (["mobilenet_v2", "--alpha", "-1"], "--alpha must be a finite number > 0"),
    (["lenet5", "--alpha", "0.5"], "--alpha applies to the MobileNets"),
    (["lenet5", "--classes", "0"], "--classes must be at least 1. Received 0"),
    (["lenet5", "--seed", "-1"], "--seed must be from 0 to 4294967295. Received -1"),
    (["lenet5", "--seed", str(2**40)], "--seed must be from 0 to 4294967295"),
    (["lenet5", "--int8", "--calib-samples", "0"], "--calib-samples must be from 1 to"),
    (["lenet5", "--int8", "--calib-samples", "-3"], "--calib-samples must be from 1 to"),
    (["lenet5", "--float16", "--io", "int8"], "--io int8 does not apply to float16"),
    (["lenet5", "--int8", "--io", "uint8", "--format", "all"], "--io uint8 applies to --format tflite only"),
    (["lenet5", "--int8", "--io", "int16"], "--io int16 does not apply to int8"),
    (
        ["lenet5", "--int8", "--qat", "--dataset", "fashion-mnist", "--qat-lr", "nan"],
        "--qat-lr must be a finite number",
    ),
    (
        ["lenet5", "--int8", "--qat", "--dataset", "fashion-mnist", "--qat-lr", "inf"],
        "--qat-lr must be a finite number",
    ),
    (["lenet5", "--int8", "--qat", "--dataset", "fashion-mnist", "--epochs", "0"], "--epochs must be at least 1"),
    (
        ["lenet5", "--int8", "--qat", "--dataset", "fashion-mnist", "--qat-batch-size", "-1"],
        "--qat-batch-size must be at least 1",
    ),
    # Too large to ever work: refused from an estimate, before anything is built.
    (["vgg16", "--input-size", "2000"], "vgg16 would have about"),
    (["mobilenet_v2", "--alpha", "1000"], "TensorFlow graphs, ONNX and TFLite files stop at 2 GB"),
    (["mobilenet_v2", "--classes", "1000000000"], "TensorFlow graphs, ONNX and TFLite files stop at 2 GB"),
]


@pytest.mark.parametrize("args, expected", EXPORT_CASES, ids=[" ".join(a) for a, _ in EXPORT_CASES])
def test_export_refuses_out_of_range_options(tmp_path, args, expected):
    out = tmp_path / "new" / "out"
    result = runner.invoke(app, ["export", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert expected in one_error_line(result)
    assert not (tmp_path / "new").exists()  # nothing created


def test_export_of_a_saved_model_refuses_zoo_size_options(tmp_path):
    saved = tmp_path / "model.keras"
    saved.write_bytes(b"not read: the options are refused first")
    result = runner.invoke(app, ["export", str(saved), "--input-size", "64", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--input-size applies to zoo models" in one_error_line(result)


def test_huge_input_size_is_refused_with_the_memory_estimate(tmp_path, monkeypatch):
    """Too large for this machine: the line says the estimate and what is available."""
    import edgecnn.profiler as profiler

    monkeypatch.setattr(profiler, "available_memory_bytes", lambda: 4 * 10**9)  # a 4 GB board
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", "mobilenet_v2", "--alpha", "0.35", "--input-size", "2048", "--out", str(out)]
    )
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("error: --input-size 2048, --alpha 0.35: exporting it needs about ")
    assert "GB of activations per image" in line and "more than the 4.0 GB available" in line
    assert not out.exists()


def test_memory_estimate_follows_the_real_profile():
    """Extrapolated from two builds at smaller sizes: within 15% of the profile of the real build."""
    from edgecnn.profiler import estimate_zoo_memory, profile_zoo_model

    assert estimate_zoo_memory("mobilenet_v2", input_size=96) is None  # usual sizes: nothing to estimate
    estimate = estimate_zoo_memory("lenet5", input_size=64)
    real = profile_zoo_model("lenet5", input_size=64)
    assert abs(estimate.params - real.params) <= 0.15 * real.params
    assert abs(estimate.peak_activation_bytes - real.peak_activation_bytes) <= 0.15 * real.peak_activation_bytes


def test_profile_checks_before_building():
    for args, expected in (
        (["lenet5", "--input-size", "0"], "--input-size must be at least 16"),
        (["mobilenet_v2", "--alpha", "nan"], "--alpha must be a finite number > 0"),
        (["vgg16", "--input-size", "5000"], "stop at 2 GB"),
    ):
        result = runner.invoke(app, ["profile", *args])
        assert result.exit_code == 2
        assert expected in one_error_line(result)


TRAIN_CASES = [
    (["train", "lenet5", "--epochs", "0"], "--epochs must be at least 1. Received 0"),
    (["train", "lenet5", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["train", "lenet5", "--lr", "nan"], "--lr must be a finite number > 0. Received nan"),
    (["train", "lenet5", "--lr", "-0.1"], "--lr must be a finite number > 0"),
    (["train", "lenet5", "--seed", "-1"], "--seed must be from 0 to 4294967295"),
    (["train", "lenet5", "--val-fraction", "1"], "--val-fraction must be a finite number > 0 and < 1"),
    (["train", "lenet5", "--val-fraction", "nan"], "--val-fraction must be a finite number"),
    (["train", "lenet5", "--limit", "0"], "--limit must be at least 1"),
    (["train", "lenet5", "--val-limit", "-2"], "--val-limit must be at least 1"),
    (["train", "lenet5", "--classes", "0"], "--classes must be at least 1"),
    (["train", "lenet5", "--input-size", "0"], "--input-size must be at least 16"),
    (["train", "mobilenet_v2", "--alpha", "inf"], "--alpha must be a finite number > 0"),
    (["train", "lenet5", "--bn-momentum", "1"], "--bn-momentum must be a finite number >= 0 and < 1"),
    (["prune", "lenet5", "--sparsity", "1"], "--sparsity must be in [0, 1)"),
    (["prune", "lenet5", "--sparsity", "-0.1"], "--sparsity must be in [0, 1)"),
    (["prune", "lenet5", "--sparsity", "nan"], "--sparsity must be in [0, 1)"),
    (["prune", "lenet5", "--sparsity", "0.5", "--epochs", "0"], "--epochs must be at least 1"),
    (["prune", "lenet5", "--sparsity", "0.5", "--seed", "-1"], "--seed must be from 0"),
    (["prune", "lenet5", "--sparsity", "0.5", "--cluster", "2"], "--cluster must be an integer from 3"),
    (["cluster", "lenet5", "--clusters", "1"], "--cluster must be an integer from 2 to 256"),
    (["cluster", "lenet5", "--clusters", "4", "--lr", "inf"], "--lr must be a finite number > 0"),
    (["cluster", "lenet5", "--clusters", "4", "--limit", "0"], "--limit must be at least 1"),
]


@pytest.mark.parametrize("args, expected", TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_training_stages_refuse_out_of_range_options(tmp_path, args, expected):
    out = tmp_path / "new" / "model.keras"
    result = runner.invoke(app, [*args, "--dataset", "fashion-mnist", "--out", str(out)])
    assert result.exit_code == 2
    assert expected in one_error_line(result)
    assert not (tmp_path / "new").exists()


def test_python_callers_get_the_same_errors(tmp_path):
    from edgecnn.export import ExportRequest, export
    from edgecnn.training import train_model

    with pytest.raises(BadArgument, match="--alpha must be a finite number > 0"):
        export(ExportRequest(model="mobilenet_v2", alpha=float("nan"), out=tmp_path / "out"))
    with pytest.raises(BadArgument, match="--seed"):
        train_model("lenet5", "fashion-mnist", seed=-1)
    with pytest.raises(BadArgument, match="--weights must be auto, none or a weights file"):
        export(ExportRequest(model="lenet5", weights="", out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_calibration_images_that_would_not_fit_are_refused_before_building(tmp_path, monkeypatch):
    """The images are counted as the source has them (200 here, though 5000 were asked)."""
    import edgecnn.profiler as profiler

    npz = Path(__file__).parent / "data" / "fashion-mnist-test-200.npz"
    monkeypatch.setattr(profiler, "available_memory_bytes", lambda: 10**6)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "export",
            "lenet5",
            "--int8",
            "--calib",
            str(npz),
            "--calib-samples",
            "5000",
            "--weights",
            "none",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: --calib-samples 5000: 200 images at 32x32x1 need 0.8 MB as float32, more than half of "
        "the 1.0 MB available; ask for fewer"
    )
    assert not out.exists()


def test_training_errors_have_no_blank_line_before_them_off_a_terminal(tmp_path):
    """stderr a pipe: the progress display is off, so the error is the first and only line."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, EDGECNN_OFFLINE="1")
    for command in (
        ["train", "lenet5"],
        ["prune", "lenet5", "--sparsity", "0.5"],
        ["cluster", "lenet5", "--clusters", "4"],
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgecnn",
                *command,
                "--dataset",
                str(tmp_path / "none.npz"),
                "--out",
                str(tmp_path / "m.keras"),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("error: dataset ") and done.stderr.count("\n") == 1, repr(done.stderr)


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (["lenet5", "--weights", "/no/such/weights.h5"], 1, "error: weights file not found: /no/such/weights.h5"),
        (
            ["lenet5", "--weights", ""],
            2,
            "error: --weights: an empty value; give one",
        ),  # the library says "must be auto, none or a weights file"
        (["lenet5", "--io", "bogus"], 2, "error: unknown --io `bogus`; use int8, uint8, int16, float"),
        (["lenet5", "--input-size", "99999999999999999999"], 2, "parameters (4.8e+42 bytes of float32 weights)"),
    ],
)
def test_export_refuses_bad_weights_io_and_absurd_sizes_before_work(tmp_path, args, code, expected):
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", *args, "--out", str(out)])
    assert result.exit_code == code
    assert expected in one_error_line(result)
    assert not out.exists()
