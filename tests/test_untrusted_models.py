"""No Keras model file runs code: every command that loads one goes through edgecnn.model_gate.

The payloads are live: a plain `keras.models.load_model` of the bytecode file creates the
marker (checked in a subprocess), so a gate that let it through would fail these tests.
"""

import json
import subprocess
import sys
import zipfile

import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.model_gate import (
    EDGECNN_LAYERS,
    KERAS_LAYERS,
    KERAS_OBJECTS,
    UntrustedModel,
    check_model_config,
    check_model_file,
)
from edgecnn.models import create_model, list_models

runner = CliRunner()


def _keras():
    from edgecnn._tf import import_keras

    return import_keras()


def _lambda_model(marker):
    """A model whose Lambda touches `marker` when Keras rebuilds it (the path is a default argument,
    which Keras stores with the marshalled bytecode)."""
    keras = _keras()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.Lambda(lambda t, p=str(marker): (__import__("pathlib").Path(p).touch(), t)[1], name="payload")(x)
    outputs = keras.layers.Dense(3, name="predictions")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def bytecode_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("payloads")
    marker = folder / "MARKER"
    model = _lambda_model(marker)
    files = {"h5": folder / "payload.h5", "keras": folder / "payload.keras"}
    model.save(files["h5"])
    model.save(files["keras"])
    marker.unlink(missing_ok=True)  # building the model above ran the lambda once
    return files, marker


def _rewrite_keras_config(source, target, edit) -> None:
    """Copy a .keras archive with its config.json changed by `edit(config)`."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            copy.writestr(item, data)


@pytest.fixture(scope="module")
def clean_keras(tmp_path_factory):
    """A harmless saved model: Conv2D, the zoo's LRN layer, TF math ops, a regularizer."""
    keras = _keras()
    import edgecnn.models.alexnet as alexnet

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4))(inputs)
    x = alexnet.LocalResponseNormalization()(x)
    x = x * 2.0 + 1.0  # TFOpLambda layers
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    folder = tmp_path_factory.mktemp("clean")
    model.save(folder / "clean.keras")
    model.save(folder / "clean.h5")
    return folder


def test_the_bytecode_payload_is_live_without_the_gate(bytecode_files):
    files, marker = bytecode_files
    code = "import tf_keras as k; k.models.load_model(r'%s', compile=False, safe_mode=True)" % files["h5"]
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert marker.exists(), "the crafted .h5 no longer runs its code in plain Keras: the test proves nothing"
    marker.unlink()


@pytest.mark.parametrize("kind", ["h5", "keras"])
@pytest.mark.parametrize(
    "command",
    [
        ["profile"],
        ["export", "--format", "tflite"],
        ["benchmark", "--runs", "1", "--min-secs", "0", "--warmup-secs", "0"],
        ["train", "--dataset", "fashion-mnist", "--epochs", "1"],
        ["prune", "--dataset", "fashion-mnist", "--sparsity", "0.5", "--epochs", "1"],
        ["cluster", "--dataset", "fashion-mnist", "--clusters", "4", "--epochs", "1"],
    ],
)
def test_every_command_refuses_a_bytecode_lambda(bytecode_files, tmp_path, kind, command):
    files, marker = bytecode_files
    args = [command[0], str(files[kind]), *command[1:]]
    if command[0] in ("export", "train", "prune", "cluster"):
        args += ["--out", str(tmp_path / ("out.keras" if command[0] != "export" else "out"))]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    line = one_error_line(result) if command[0] != "benchmark" else result.stderr
    assert "'payload' (Lambda)" in line and "runs Python code" in line and "--trust-model" in line
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


def test_evaluate_never_loads_a_keras_file(bytecode_files):
    """evaluate scores artifacts only: a Keras file is refused before anything reads it."""
    files, marker = bytecode_files
    result = runner.invoke(app, ["evaluate", str(files["h5"]), "--data", "default"])
    assert result.exit_code == 2
    assert "not a .tflite or .onnx file" in one_error_line(result)
    assert not marker.exists()


def test_the_gate_refuses_before_tensorflow_is_imported(bytecode_files):
    files, _ = bytecode_files
    code = (
        "import sys\nfrom edgecnn.model_gate import check_model_file, UntrustedModel\n"
        f"try:\n    check_model_file(r'{files['keras']}')\nexcept UntrustedModel:\n    pass\n"
        "else:\n    raise SystemExit('not refused')\n"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _function_config(module, name):
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


# Each edit turns the clean archive into a payload; none of them names Lambda bytecode.
PAYLOADS = {
    # A Lambda calling a standard-library function, with arguments meant to create a file.
    "stdlib-function-lambda": lambda layers: layers.insert(
        2,
        {
            "module": "keras.layers",
            "class_name": "Lambda",
            "registered_name": None,
            "name": "payload",
            "config": {
                "name": "payload",
                "function": _function_config("os", "system"),
                "function_type": "function",
                "module": "os",
                "arguments": {"command": "touch MARKER"},
                "output_shape": None,
            },
            "inbound_nodes": [[["conv2d", 0, 0, {}]]],
        },
    ),
    # A TensorFlow op that writes a file, called as a TFOpLambda.
    "tf-io-op": lambda layers: layers[3]["config"].update(function="io.write_file"),
    # An activation that is a function of another module.
    "activation-function": lambda layers: layers[1]["config"].update(activation=_function_config("os", "system")),
    # An initializer class looked up in an arbitrary module.
    "initializer-module": lambda layers: layers[1]["config"].update(
        kernel_initializer={"module": "subprocess", "class_name": "Popen", "config": {}, "registered_name": None}
    ),
    # A built-in class name whose registered name points elsewhere.
    "registered-name": lambda layers: layers[1].update(registered_name="os>system"),
    # A built-in class name with a module outside Keras.
    "foreign-module": lambda layers: layers[1].update(module="subprocess"),
    # A Keras module that imports `os`: `__qualname__` lookup would reach os.system.
    "keras-module-qualname": lambda layers: layers[1]["config"].update(
        activation=_function_config("keras.src.saving.saving_lib", "os.system")
    ),
    # A class nobody registered.
    "unknown-class": lambda layers: layers[1].update(class_name="MyLayer", module="__main__"),
    # A type spec that names a class to import.
    "typespec": lambda layers: layers[1]["config"].update(
        dtype={
            "class_name": "__typespec__",
            "spec_name": "Popen",
            "module": "subprocess",
            "registered_name": None,
            "config": [],
        }
    ),
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_crafted_keras_config_is_refused_in_one_line(clean_keras, tmp_path, payload):
    target = tmp_path / f"{payload}.keras"
    _rewrite_keras_config(
        clean_keras / "clean.keras", target, lambda config: PAYLOADS[payload](config["config"]["layers"])
    )
    with pytest.raises(UntrustedModel) as refusal:
        check_model_file(target)
    assert "refused" in str(refusal.value) and "\n" not in str(refusal.value)
    result = runner.invoke(app, ["profile", str(target)])
    assert result.exit_code == 1
    assert "--trust-model" in one_error_line(result)
    assert not (tmp_path / "MARKER").exists()


def test_clean_files_pass_the_gate_and_load(clean_keras):
    for name in ("clean.keras", "clean.h5"):
        check_model_file(clean_keras / name)
        result = runner.invoke(app, ["profile", str(clean_keras / name), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["layers"][-1]["output_shape"] == [3]


def test_trust_model_is_the_only_way_past(tmp_path):
    keras = _keras()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs))
    path = tmp_path / "mine.keras"
    model.save(path)
    assert runner.invoke(app, ["profile", str(path)]).exit_code == 1
    result = runner.invoke(app, ["profile", str(path), "--trust-model", "--json"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_passes_the_gate_in_both_formats(name):
    keras = _keras()
    from edgecnn.models import get_model_info

    info = get_model_info(name)
    size = max(32, info.min_input_size)
    model = create_model(name, input_shape=(size, size, info.default_input_shape[2]), classes=10)
    check_model_config(keras.saving.serialize_keras_object(model), source=name)  # .keras's config.json
    check_model_config(json.loads(model.to_json()), source=name)  # .h5's model_config


def test_the_allowlists_name_real_keras_classes():
    import importlib
    import pkgutil

    import edgecnn.models

    keras = _keras()
    for module in pkgutil.iter_modules(edgecnn.models.__path__):  # each registers its own layers
        importlib.import_module(f"edgecnn.models.{module.name}")

    namespaces = (keras, keras.layers, keras.initializers, keras.regularizers, keras.constraints, keras.mixed_precision)
    for name in (KERAS_LAYERS | KERAS_OBJECTS) - {"Functional"}:
        assert any(isinstance(getattr(ns, name, None), type) for ns in namespaces), name
    assert "Lambda" not in KERAS_LAYERS
    registered = {key for key in keras.utils.get_custom_objects() if key.startswith("edgecnn>")}
    assert registered == set(EDGECNN_LAYERS), "a zoo layer is registered with Keras but not allowed by the gate"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "not a loadable Keras model"),
        (None, "has no config.json"),
        (b"[1, 2]", "not an object"),
        (b"{" * 100_000, "not a loadable Keras model"),
    ],
)
def test_malformed_archives_are_one_error(tmp_path, content, message):
    from edgecnn.errors import EdgecnnError

    path = tmp_path / "bad.keras"
    if content == b"garbage":
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", "{}")
            if content is not None:
                archive.writestr("config.json", content)
    with pytest.raises(EdgecnnError) as error:
        check_model_file(path)
    assert message in str(error.value)


def test_a_deeply_nested_config_is_refused_not_a_crash():
    config = {"class_name": "Functional", "config": {}}
    node = config["config"]
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(UntrustedModel, match="nested too deeply"):
        check_model_config(config, source="deep.keras")


def test_a_malformed_sidecar_is_one_error(clean_keras, tmp_path):
    import shutil

    path = tmp_path / "clean.keras"
    shutil.copy(clean_keras / "clean.keras", path)
    (tmp_path / "clean.edgecnn.json").write_text('["not", "a", "sidecar"]')
    result = runner.invoke(app, ["export", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "not an edgecnn sidecar" in one_error_line(result)
