"""`edgecnn export` as a command: option mapping, JSON output, one-line failures."""

import json

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app

runner = CliRunner()


def _one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_two_quantization_flags_exit_2(tmp_path):
    result = runner.invoke(app, ["export", "lenet5", "--int8", "--float16", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--int8 and --float16" in _one_error_line(result)


def test_unknown_model_exit_2_with_suggestion(tmp_path):
    result = runner.invoke(app, ["export", "mobilenetv3", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Did you mean" in _one_error_line(result)


def test_bad_format_exit_2(tmp_path):
    result = runner.invoke(app, ["export", "lenet5", "--format", "coreml", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--format" in _one_error_line(result)


def test_empty_calibration_folder_fails_cleanly(tmp_path):
    empty = tmp_path / "calib"
    empty.mkdir()
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "lenet5", "--int8", "--calib", str(empty), "--out", str(out)])
    assert result.exit_code != 0
    _one_error_line(result)
    assert not out.exists() or list(out.iterdir()) == []


def test_corrupt_keras_file_exit_1(tmp_path):
    corrupt = tmp_path / "broken.keras"
    corrupt.write_text("garbage")
    result = runner.invoke(app, ["export", str(corrupt), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "broken.keras" in _one_error_line(result)


@pytest.mark.slow
def test_json_lists_manifests(tmp_path):
    result = runner.invoke(app, ["export", "lenet5", "--weights", "none", "--calib-samples", "4",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    (manifest,) = json.loads(result.stdout)
    assert manifest["model"] == "lenet5" and manifest["quantization"] == "float32"
    assert (tmp_path / "lenet5-float32" / "manifest.json").is_file()
