"""Pruning, clustering and QAT: they really do what they report, read back from the weights;
what the toolkit cannot handle is one clear error; optimized models export with their record.

Tiny and fast: LeNet-5 on the 200 shipped Fashion-MNIST images, one epoch per stage.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

import edgecnn.cli.train  # noqa: F401  (registers train/prune/cluster on the app)
from edgecnn.cli import app
from edgecnn.errors import BadArgument

NPZ = Path(__file__).parent / "data" / "fashion-mnist-test-200.npz"
runner = CliRunner()


def _kernels(path):
    """{layer: kernel} of a saved model, read with export's own loader."""
    from edgecnn.loading import read_keras_model

    model = read_keras_model(path)
    return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A LeNet-5 trained briefly on the 200 images, saved with its sidecar."""
    from edgecnn.training import train_model

    out = tmp_path_factory.mktemp("base") / "lenet.keras"
    train_model("lenet5", NPZ, epochs=2, batch_size=32, lr=3e-3, out=out)
    return out


@pytest.fixture(scope="module")
def data():
    from edgecnn.training import load_training_data

    return load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit")


@pytest.fixture(scope="module")
def pruned(base, tmp_path_factory):
    from edgecnn.training import prune_model

    out = tmp_path_factory.mktemp("pruned") / "pruned.keras"
    model, info = prune_model(str(base), NPZ, sparsity=0.5, epochs=1, batch_size=32, out=out)
    return {"model": model, "info": info, "path": out}


# -- pruning ------------------------------------------------------------------------------
def test_pruning_really_prunes_and_reports_it_from_the_weights(pruned, base):
    info = pruned["info"]
    kernels = _kernels(pruned["path"])  # read back from the saved file, not from the report
    zeros = sum(int(np.sum(k == 0)) for k in kernels.values())
    total = sum(k.size for k in kernels.values())
    assert zeros / total == pytest.approx(0.5, abs=0.01)
    assert info["pruning"]["total"] == pytest.approx(zeros / total, abs=1e-6)
    by_layer = {row["layer"]: row for row in info["pruning"]["layers"]}
    assert set(by_layer) == set(kernels)
    for name, kernel in kernels.items():
        assert by_layer[name]["zeros"] == int(np.sum(kernel == 0))
    # The dense model had no zeros: pruning made them.
    assert sum(int(np.sum(k == 0)) for k in _kernels(base).values()) == 0
    assert info["size"]["optimized_gzip_bytes"] < 0.8 * info["size"]["dense_gzip_bytes"]
    assert info["size"]["optimized_bytes"] == info["size"]["dense_bytes"]  # zeros compress; the file does not shrink
    from edgecnn.loading import sidecar_path

    sidecar = json.loads(sidecar_path(pruned["path"]).read_text())
    assert sidecar["optimization"] == {"sparsity": info["pruning"]["total"], "clusters": None, "qat": False}
    assert sidecar["model"] == "lenet5" and sidecar["parent"] == str(base)


def test_pruning_leaves_plain_keras_layers(pruned):
    from edgecnn.loading import read_keras_model

    model = read_keras_model(pruned["path"])
    assert {type(layer).__name__ for layer in model.layers} <= {
        "InputLayer",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    }


def test_structured_2_4_pattern(base):
    from edgecnn.training import prune_model

    model, info = prune_model(
        str(base), NPZ, sparsity=None, structured="2:4", epochs=1, batch_size=32, measure_size=False
    )
    pattern = info["pruning"]["pattern"]
    assert pattern["fc1"] and pattern["fc2"]
    fc1 = {r["layer"]: r for r in info["pruning"]["layers"]}["fc1"]
    assert fc1["sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert info["pruning"]["schedule"] == "structured"


def test_constant_schedule_reaches_the_target(base):
    from edgecnn.training import prune_model

    _, info = prune_model(
        str(base), NPZ, sparsity=0.3, schedule="constant", epochs=1, batch_size=32, measure_size=False
    )
    assert info["pruning"]["total"] == pytest.approx(0.3, abs=0.01)


def test_pruning_steps_end_inside_the_fine_tuning():
    from edgecnn.training.prune import pruning_steps

    for total in (1, 2, 3, 7, 100, 938, 1876, 10000):
        steps = pruning_steps(total)
        assert steps["end_step"] <= total - 1
        assert steps["end_step"] % steps["frequency"] == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sparsity": 1.0}, r"\[0, 1\)"),
        ({"sparsity": -0.1}, r"\[0, 1\)"),
        ({"sparsity": 0.5, "schedule": "cosine"}, "--schedule"),
        ({"sparsity": None, "structured": "4:2"}, "0 < M < N"),
        ({"sparsity": None, "structured": "2:1000000"}, "N <= 64"),
        ({"sparsity": 0.7, "structured": "2:4"}, "does not match"),
        ({"sparsity": 0.5, "epochs": 0}, "--epochs"),
    ],
)
def test_bad_pruning_arguments(base, kwargs, match):
    from edgecnn.training import prune_model

    with pytest.raises(BadArgument, match=match):
        prune_model(str(base), NPZ, **kwargs)


# -- clustering -----------------------------------------------------------------------------
def test_clustering_leaves_k_values_per_kernel(base, tmp_path):
    from edgecnn.training import cluster_model

    out = tmp_path / "c.keras"
    _, info = cluster_model(str(base), NPZ, clusters=8, epochs=1, batch_size=32, out=out)
    for name, kernel in _kernels(out).items():
        assert np.unique(kernel).size <= 8, name
    assert info["optimization"]["clusters"] == 8
    assert info["size"]["gzip_ratio"] < 0.6


def test_prune_then_cluster_keeps_the_zeros(pruned, tmp_path):
    from edgecnn.training import cluster_model

    out = tmp_path / "pc.keras"
    _, info = cluster_model(str(pruned["path"]), NPZ, clusters=8, epochs=1, batch_size=32, out=out, measure_size=False)
    assert info["clustering"]["preserve_sparsity"] is True  # from the sidecar's sparsity
    kernels = _kernels(out)
    for name, kernel in kernels.items():
        before = pruned["model"].get_layer(name).kernel.numpy()
        assert np.all(kernel[before == 0] == 0), name  # every pruned weight is still zero
        assert np.unique(kernel).size <= 8, name
    assert info["optimization"]["sparsity"] >= 0.49 and info["optimization"]["clusters"] == 8


def test_bad_cluster_count(base):
    from edgecnn.training import cluster_model

    with pytest.raises(BadArgument, match="--cluster"):
        cluster_model(str(base), NPZ, clusters=1)


# -- QAT --------------------------------------------------------------------------------------
def test_qat_converts_to_an_int8_tflite(base, data):
    from converters.tflite import keras_to_tflite
    from edgecnn.loading import read_keras_model
    from edgecnn.training import quantize_aware_finetune

    model = read_keras_model(base)
    qat, info = quantize_aware_finetune(model, data, 1, batch_size=32)
    assert info["scheme"] == "Default8BitQuantizeScheme"
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in qat.layers)
    flatbuffer, _ = keras_to_tflite(
        qat, quantization="int8", representative_dataset=data.representative_dataset(8), io="int8"
    )
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    # The float model was not touched.
    np.testing.assert_array_equal(read_keras_model(base).get_weights()[0], model.get_weights()[0])


def test_qat_after_pruning_preserves_the_sparsity(pruned):
    from edgecnn.loading import read_keras_model
    from edgecnn.training.qat import qat_stage

    optimization = {"sparsity": pruned["info"]["pruning"]["total"], "clusters": None, "qat": False}
    qat, info = qat_stage(
        read_keras_model(pruned["path"]),
        dataset=str(NPZ),
        epochs=1,
        preprocess="unit",
        optimization=optimization,
        batch_size=32,
    )
    assert info["preserve"] == "sparsity" and "PrunePreserve" in info["scheme"]
    assert info["sparsity_after"] == pytest.approx(info["sparsity_before"], abs=1e-6)
    assert info["optimization"] == {**optimization, "qat": True}


def test_qat_needs_data(base):
    from edgecnn.loading import read_keras_model
    from edgecnn.training import quantize_aware_finetune
    from edgecnn.training.qat import qat_stage

    model = read_keras_model(base)
    with pytest.raises(BadArgument, match="--dataset"):
        quantize_aware_finetune(model, None, 1)
    with pytest.raises(BadArgument, match="--dataset"):
        qat_stage(model, dataset=None, epochs=1, preprocess="unit")
    with pytest.raises(BadArgument, match="--epochs"):
        qat_stage(model, dataset=str(NPZ), epochs=0, preprocess="unit")


# -- what the toolkit cannot handle ------------------------------------------------------------
def _model_with(layer_factory):
    import tf_keras as keras

    x = keras.Input((16, 16, 1))
    y = keras.layers.Conv2D(4, 3, name="conv")(x)
    y = layer_factory()(y)
    y = keras.layers.Flatten(name="flatten")(y)
    y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="tiny")


def _lrn():
    from edgecnn.models.alexnet import LocalResponseNormalization

    return LocalResponseNormalization(name="lrn")


def test_pruning_names_the_layer_it_cannot_wrap():
    from edgecnn.training import prune_model

    with pytest.raises(BadArgument, match=r"layer `lrn`: LocalResponseNormalization is not in the pruning registry"):
        prune_model(_model_with(_lrn), NPZ, sparsity=0.5, epochs=1)


def test_qat_names_the_layers_it_cannot_quantize(data):
    import tf_keras as keras

    from edgecnn.training import quantize_aware_finetune

    small = data  # 32x32x1 data; the models below take 16x16x1: checks come before any fitting
    with pytest.raises(BadArgument, match=r"layer `lrn`: LocalResponseNormalization is not in the default 8-bit"):
        quantize_aware_finetune(_model_with(_lrn), small, 1)
    with pytest.raises(BadArgument, match=r"layer `double`: Lambda layers are opaque"):
        quantize_aware_finetune(_model_with(lambda: keras.layers.Lambda(lambda t: 2 * t, name="double")), small, 1)


def test_cli_prune_unsupported_layer_is_one_line_and_writes_nothing(tmp_path):
    from edgecnn.training.train import save_model

    source = tmp_path / "in"
    source.mkdir()
    import tf_keras as keras

    x = keras.Input((32, 32, 1))
    y = keras.layers.Conv2D(4, 5, name="conv")(x)
    y = _lrn()(y)
    y = keras.layers.Flatten(name="flatten")(y)
    y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
    save_model(keras.Model(x, y, name="tiny"), source / "tiny.keras", {"model": "tiny", "preprocess": "unit"})
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "prune",
            str(source / "tiny.keras"),
            "--sparsity",
            "0.5",
            "--dataset",
            str(NPZ),
            "--out",
            str(out / "p.keras"),
        ],
    )
    assert result.exit_code == 2
    assert "layer `lrn`" in one_error_line(result)
    assert not out.exists() or list(out.iterdir()) == []


# -- the commands --------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", ["1.0", "-0.5", "1.5"])
def test_cli_prune_sparsity_out_of_range(base, tmp_path, sparsity):
    result = runner.invoke(
        app, ["prune", str(base), "--sparsity", sparsity, "--dataset", str(NPZ), "--out", str(tmp_path / "p.keras")]
    )
    assert result.exit_code == 2
    assert "[0, 1)" in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_cli_prune_with_cluster_json(base, tmp_path):
    out = tmp_path / "pc.keras"
    result = runner.invoke(
        app,
        [
            "prune",
            str(base),
            "--sparsity",
            "0.5",
            "--cluster",
            "8",
            "--dataset",
            str(NPZ),
            "--epochs",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["stage"] == "prune+cluster" and info["optimization"]["clusters"] == 8
    assert info["optimization"]["sparsity"] >= 0.45
    assert out.is_file()


def test_cli_cluster_human_output(base, tmp_path):
    result = runner.invoke(
        app,
        [
            "cluster",
            str(base),
            "--clusters",
            "4",
            "--dataset",
            str(NPZ),
            "--epochs",
            "1",
            "--limit",
            "64",
            "--out",
            str(tmp_path / "c.keras"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "Distinct values" in result.stdout and "gzip size" in result.stdout


# -- export picks it up -------------------------------------------------------------------------
def test_pruned_model_exports_with_its_optimization_in_the_manifest(pruned, tmp_path):
    from edgecnn.export import ExportRequest, export

    (manifest,) = export(
        ExportRequest(model=str(pruned["path"]), calib=str(NPZ), calib_samples=8, parity_samples=8, out=tmp_path)
    )
    assert manifest["optimization"]["sparsity"] == pruned["info"]["pruning"]["total"]
    assert manifest["preprocess"]["mode"] == "unit" and manifest["model"] == "lenet5"
    assert manifest["parity"]["top1_agreement"] == 1.0
