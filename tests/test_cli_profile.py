"""`edgecnn profile` and `edgecnn models`: argument mapping, output and one-line errors."""

import json
import subprocess
import sys

import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.models import list_models

runner = CliRunner()


def test_profile_json_has_the_keys():
    result = runner.invoke(app, ["profile", "mobilenet_v2", "--input-size", "32", "--classes", "10", "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert {"model", "input_shape", "params", "macs", "peak_activation_bytes", "layers"} <= set(record)
    assert record["input_shape"] == [32, 32, 3]
    assert record["layers"][-1]["name"] == "predictions"
    assert record["layers"][-1]["output_shape"] == [10]
    assert record["macs"] == sum(layer["macs"] for layer in record["layers"]) > 0


def test_profile_table_for_people():
    result = runner.invoke(app, ["profile", "lenet"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    for text in ("conv1", "Conv2D", "28x28x6", "MACs", "416.52K", "61.71K", "peak activations", "int8"):
        assert text in result.stdout


def test_profile_alpha_is_mapped():
    narrow = runner.invoke(
        app, ["profile", "mobilenet", "--alpha", "0.25", "--input-size", "32", "--classes", "10", "--json"]
    )
    wide = runner.invoke(
        app, ["profile", "mobilenet", "--alpha", "0.5", "--input-size", "32", "--classes", "10", "--json"]
    )
    assert narrow.exit_code == wide.exit_code == 0
    assert json.loads(narrow.stdout)["macs"] < json.loads(wide.stdout)["macs"]


def test_unknown_model_suggests_the_closest_name():
    result = runner.invoke(app, ["profile", "resnet5"])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "Unknown model `resnet5`" in line and "Did you mean `resnet50`?" in line


@pytest.mark.parametrize(
    "args, expected",
    [
        # Checked before the model is built, naming the option (edgecnn.profiler.check_zoo_arguments).
        (["lenet5", "--alpha", "0.5"], "--alpha applies to the MobileNets; lenet5 has no width multiplier"),
        (["mobilenet_v2", "--input-size", "8"], "--input-size must be at least 32. Received 8"),
        (["lenet5", "--classes", "0"], "--classes must be at least 1. Received 0"),
        (["lenet5", "--input-size", "0"], "--input-size must be at least 16. Received 0"),
        (["mobilenet_v2", "--alpha", "0", "--input-size", "32"], "--alpha must be a finite number > 0. Received 0.0"),
        (["some/dir/model.keras", "--alpha", "0.5"], "apply to zoo models"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, expected):
    result = runner.invoke(app, ["profile", *args])
    assert result.exit_code == 2
    assert expected in one_error_line(result)


def test_wrong_option_type_is_typers_exit_2():
    result = runner.invoke(app, ["profile", "lenet5", "--input-size", "abc"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_missing_and_broken_model_files_exit_1(tmp_path):
    result = runner.invoke(app, ["profile", str(tmp_path / "missing.keras")])
    assert result.exit_code == 1
    assert "no such model file" in one_error_line(result)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"garbage")
    result = runner.invoke(app, ["profile", str(broken)])
    assert result.exit_code == 1
    assert "not a loadable Keras model" in one_error_line(result)


def test_profile_a_saved_model(tmp_path):
    from edgecnn.models import create_model

    path = tmp_path / "tiny.keras"
    create_model("lenet5", classes=3).save(path)
    result = runner.invoke(app, ["profile", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["layers"][-1]["output_shape"] == [3]


def test_models_lists_every_registry_name(monkeypatch, tmp_path):
    """Argument mapping only: the counts themselves are tested in test_profiler.py."""
    import edgecnn.profiler as profiler
    from edgecnn.profiler import ModelProfile

    def fake(name, **kwargs):
        return ModelProfile(
            model=name,
            input_shape=(1, 1, 1),
            params=123_456,
            macs=7_890_000_000,
            peak_activation_bytes=0,
            peak_activation_layer="",
            weight_bytes_float32=0,
            weight_bytes_int8=0,
        )

    monkeypatch.setattr(profiler, "profile_zoo_model", fake)
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == list_models()
    for row in rows:
        assert set(row) == {"name", "aliases", "input_shape", "params", "macs"}
    assert rows[0]["input_shape"] == [32, 32, 1] and "lenet" in rows[0]["aliases"]

    table = runner.invoke(app, ["models"], env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.stderr
    for name in list_models():
        assert name in table.stdout
    assert "123.46K" in table.stdout and "7.89G" in table.stdout


def test_the_real_command_prints_one_line_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "edgecnn.cli", "profile", "nosuchmodel"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: Unknown model `nosuchmodel`")
    assert "Traceback" not in result.stderr + result.stdout
