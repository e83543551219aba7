"""`edgecnn train` and its data side: sources, preprocessing, splits, sidecar, bad input.

Tiny and fast: LeNet-5 on the 200 Fashion-MNIST test images shipped in tests/data,
one to a few epochs. Accuracy is only checked for sanity (trained beats untrained on
the training images); figures belong to benchmarks/optimization.py.
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

DATA = Path(__file__).parent / "data"
NPZ = DATA / "fashion-mnist-test-200.npz"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
runner = CliRunner()


# -- data --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["unit", "tf", "raw", "caffe", "torch"])
def test_tf_normalize_is_bit_identical_to_calibration(mode):
    from calibration import normalize
    from edgecnn.training.data import normalize_tf

    pixels = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    expected = normalize(pixels, mode)
    got = normalize_tf(pixels, mode).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_npz_is_split_seeded_resized_and_preprocessed():
    from calibration import preprocess
    from edgecnn.training import load_training_data

    data = load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit", seed=0)
    assert data.x_train.shape == (180, 32, 32, 1) and data.x_val.shape == (20, 32, 32, 1)
    assert data.x_train.dtype == np.uint8 and data.num_classes == 10
    assert data.validation["kind"] == "held out"
    again = load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit", seed=0)
    np.testing.assert_array_equal(again.y_val, data.y_val)
    other = load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit", seed=1)
    assert not np.array_equal(other.y_val, data.y_val)
    # The validation images are not among the training images.
    train_rows = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train_rows for row in data.x_val)
    # A batch of the tf.data pipeline is what calibration.preprocess makes of the raw pixels
    # (the held-out images are the first of the source's seeded order).
    raw = np.load(NPZ)
    index = np.random.default_rng(0).permutation(200)[:4]
    x, y = next(iter(data.val_dataset(4)))
    expected = preprocess(raw["x"][index], input_shape=(32, 32, 1), mode="unit", crop_fraction=1.0)
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(y.numpy(), raw["y"][index])


def test_grayscale_becomes_rgb_for_a_three_channel_model():
    from edgecnn.training import load_training_data

    data = load_training_data(NPZ, input_shape=(32, 32, 3), preprocess="tf", limit=8, val_limit=4)
    assert data.x_train.shape == (8, 32, 32, 3)
    assert np.array_equal(data.x_train[..., 0], data.x_train[..., 2])
    x, _ = next(iter(data.train_dataset(8)))
    assert float(x.numpy().min()) >= -1.0 and float(x.numpy().max()) <= 1.0


def test_labelled_image_folder(tmp_path):
    from PIL import Image

    from edgecnn.training import load_training_data

    lines = []
    for i in range(6):
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png, {i % 3}")
    (tmp_path / "dataset.txt").write_text("\n".join(lines) + "\n")
    data = load_training_data(tmp_path, input_shape=(16, 16, 3), preprocess="tf", val_fraction=0.34)
    assert len(data.x_val) == 2 and len(data.x_train) == 4 and data.num_classes == 3


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_validates_on_its_test_split():
    from edgecnn.training import load_training_data

    data = load_training_data("fashion-mnist", input_shape=(32, 32, 1), preprocess="unit", limit=50, val_limit=30)
    assert data.source["split"] == "train"
    assert data.validation["kind"] == "test split" and data.validation["source"]["split"] == "test"
    assert len(data.x_train) == 50 and len(data.x_val) == 30
    assert data.class_names[0] == "T-shirt/top"


def test_missing_dataset_is_one_clear_error(tmp_path):
    from edgecnn.training import load_training_data

    with pytest.raises(BadArgument, match="not found"):
        load_training_data(tmp_path / "nope", input_shape=(32, 32, 1), preprocess="unit")


@pytest.mark.parametrize("kind", ["npz", "folder", "empty folder", "random"])
def test_dataset_without_labels_is_refused(tmp_path, kind):
    from PIL import Image

    from edgecnn.training import load_training_data

    if kind == "npz":
        path = tmp_path / "x.npz"
        np.savez(path, x=np.zeros((4, 28, 28), np.uint8))
    elif kind == "random":
        path = "random:8"
    else:
        path = tmp_path / "images"
        path.mkdir()
        if kind == "folder":
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(path / "a.png")
    # No warning before the error (issue 12): random data is refused without its "not real images" notice.
    with _no_warning():
        with pytest.raises(BadArgument, match="holds no labels"):
            load_training_data(path, input_shape=(32, 32, 1), preprocess="unit")


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_labels_outside_the_class_range_are_refused():
    from edgecnn.training import load_training_data

    with pytest.raises(BadArgument, match="outside the class range"):
        load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit", num_classes=5)


# -- training ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """LeNet-5 trained for 3 short epochs on the 200 images, saved with its sidecar."""
    from edgecnn.training import train_model

    out = tmp_path_factory.mktemp("trained") / "lenet.keras"
    model, info = train_model("lenet5", NPZ, epochs=3, batch_size=32, lr=3e-3, out=out, seed=0)
    return {"model": model, "info": info, "path": out}


def test_trained_beats_untrained_on_the_training_images(trained):
    from edgecnn.training import load_training_data
    from edgecnn.training.train import ModelSpec, evaluate_model

    data = load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit")
    untrained = ModelSpec.resolve("lenet5").build(10, seed=0)
    assert evaluate_model(trained["model"], data, split="train") > evaluate_model(untrained, data, split="train")


def test_sidecar_records_the_run(trained):
    from edgecnn.loading import load_keras_model, sidecar_path

    path = trained["path"]
    sidecar = json.loads(sidecar_path(path).read_text())
    for key in (
        "model",
        "preprocess",
        "input_shape",
        "class_names",
        "dataset",
        "epochs",
        "history",
        "train_accuracy",
        "val_accuracy",
        "seconds",
        "seed",
        "optimization",
    ):
        assert key in sidecar, key
    assert sidecar["model"] == "lenet5" and sidecar["preprocess"] == "unit" and sidecar["epochs"] == 3
    assert [row["epoch"] for row in sidecar["history"]] == [1, 2, 3]
    assert all(row["val_accuracy"] is not None for row in sidecar["history"])
    assert sidecar["optimization"] == {"sparsity": None, "clusters": None, "qat": False}
    assert sidecar["dataset"]["kind"] == "npz"
    # No temporary file is left beside them, and export's loader reads them back.
    assert sorted(p.name for p in path.parent.iterdir()) == ["lenet.edgecnn.json", "lenet.keras"]
    model, facts = load_keras_model(path)
    assert facts["name"] == "lenet5" and facts["preprocess"] == "unit" and not facts["preprocess_guessed"]
    np.testing.assert_allclose(model.get_weights()[0], trained["model"].get_weights()[0])


def test_same_seed_same_weights():
    from edgecnn.training import train_model

    a, _ = train_model("lenet5", NPZ, epochs=1, limit=64, val_limit=8, seed=3)
    b, _ = train_model("lenet5", NPZ, epochs=1, limit=64, val_limit=8, seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_fine_tuning_with_other_classes_gets_a_new_head(trained, tmp_path):
    from edgecnn.training import train_model

    model, info = train_model(
        str(trained["path"]), NPZ, epochs=1, classes=12, limit=32, val_limit=8, out=tmp_path / "ft.keras"
    )
    assert model.outputs[0].shape[-1] == 12
    assert any("new classifier" in w for w in info["warnings"])
    assert info["parent"] == str(trained["path"]) and info["model"] == "lenet5"
    # The feature layers kept the trained weights' shapes and the head is new.
    assert model.get_layer("conv1").get_weights()[0].shape == (5, 5, 1, 6)


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch, trained):
    from edgecnn.training.train import save_model

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    import tf_keras

    monkeypatch.setattr(tf_keras.Model, "save", broken_save)
    with pytest.raises(OSError):
        save_model(trained["model"], tmp_path / "m.keras", {"model": "lenet5"})
    assert list(tmp_path.iterdir()) == []


def test_multi_output_models_weigh_auxiliary_losses():
    import tf_keras as keras

    from edgecnn.training.train import compile_for_training

    x = keras.Input((4,))
    outs = [
        keras.layers.Dense(3, activation="softmax", name=n)(x)
        for n in ("predictions", "aux1_predictions", "aux2_predictions")
    ]
    model = compile_for_training(keras.Model(x, outs), lr=1e-3)
    assert model.compiled_loss._loss_weights == {"predictions": 1.0, "aux1_predictions": 0.3, "aux2_predictions": 0.3}


def test_batchnorm_statistics_are_recalibrated_on_training_images():
    import tf_keras as keras

    from edgecnn.training import load_training_data
    from edgecnn.training.train import recalibrate_batchnorm

    data = load_training_data(NPZ, input_shape=(32, 32, 1), preprocess="unit")
    x = keras.Input((32, 32, 1))
    conv = keras.layers.Conv2D(4, 3, name="conv")(x)
    y = keras.layers.BatchNormalization(momentum=0.999, name="bn")(conv)
    model = keras.Model(x, keras.layers.Dense(10, name="predictions")(keras.layers.Flatten()(y)))
    assert recalibrate_batchnorm(model, data, batches=20, batch_size=256) == 1
    features = keras.Model(x, conv)(data.train_arrays()[0]).numpy()  # one batch holds all 180 images
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), features.var(axis=(0, 1, 2)), rtol=1e-2)
    assert bn.momentum == 0.999  # put back


def test_lr_schedule_and_bad_values():
    from edgecnn.training import train_model

    _, info = train_model("lenet5", NPZ, epochs=1, limit=32, val_limit=8, lr_schedule="cosine")
    assert info["lr_schedule"] == "cosine" and info["history"][0]["seconds"] > 0
    # What the schedule does: the rate starts at --lr and decays to 0 over every step of every
    # epoch (cosine); "constant" keeps --lr to the last step.
    for schedule in ("constant", "cosine"):
        model, info = train_model(
            "lenet5", NPZ, epochs=2, limit=32, val_limit=8, batch_size=8, lr=0.01, lr_schedule=schedule
        )
        optimizer = model.optimizer
        assert int(optimizer.iterations) == 2 * 4 == len(info["history"]) * 4
        rate = optimizer._learning_rate  # the schedule itself, or the constant's variable
        if schedule == "cosine":
            assert float(rate(0)) == pytest.approx(0.01)
            assert float(rate(4)) == pytest.approx(0.005, rel=1e-4)  # half-way: cos(pi/2)
            assert float(rate(8)) == pytest.approx(0.0, abs=1e-9)
            assert float(optimizer.learning_rate) < 0.001  # the last step ran near 0
        else:
            assert float(rate) == pytest.approx(0.01) and float(optimizer.learning_rate) == pytest.approx(0.01)
    with pytest.raises(BadArgument, match="--lr-schedule"):
        train_model("lenet5", NPZ, lr_schedule="step")
    with pytest.raises(BadArgument, match="--bn-momentum"):
        train_model("lenet5", NPZ, bn_momentum=1.0)


@pytest.mark.slow
def test_googlenet_trains_with_auxiliary_heads_and_saves_without(tmp_path):
    from edgecnn.training import train_model

    model, info = train_model(
        "googlenet", NPZ, epochs=1, input_size=32, limit=16, val_limit=8, batch_size=16, out=tmp_path / "g.keras"
    )
    assert model.output_names == ["predictions"]
    assert "2 auxiliary classifiers" in info["auxiliary_heads"]
    # Three losses, the auxiliary ones at 0.3: the first loss is about ln(10) * 1.6.
    assert 3.0 < info["history"][0]["loss"] < 4.5
    from edgecnn.loading import read_keras_model

    assert read_keras_model(tmp_path / "g.keras").output_names == ["predictions"]


@pytest.mark.parametrize("epochs", [0, -1])
def test_epochs_below_one_are_refused(epochs):
    from edgecnn.training import train_model

    with pytest.raises(BadArgument, match="--epochs"):
        train_model("lenet5", NPZ, epochs=epochs)


# -- the command ---------------------------------------------------------------------------
def test_cli_train_json(tmp_path):
    out = tmp_path / "m.keras"
    result = runner.invoke(
        app,
        [
            "train",
            "lenet5",
            "--dataset",
            str(NPZ),
            "--epochs",
            "1",
            "--limit",
            "64",
            "--val-limit",
            "16",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["path"] == str(out) and out.is_file()
    assert "epoch 1/1" in result.stderr  # the per-epoch line


@pytest.mark.parametrize(
    "args, match",
    [
        (["--dataset", "does/not/exist.npz"], "not found"),
        (["--dataset", str(NPZ), "--classes", "3"], "outside the class range"),
        (["--dataset", str(NPZ), "--epochs", "0"], "--epochs"),
        (["--dataset", str(NPZ), "--out", "model.h5"], ".keras"),
    ],
)
def test_cli_train_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, match):
    args = [a if a != "model.h5" else str(tmp_path / "model.h5") for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "m.keras")]
    result = runner.invoke(app, ["train", "lenet5", *args])
    assert result.exit_code == 2
    assert match in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_cli_train_unlabelled_dataset(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((4, 28, 28), np.uint8))
    result = runner.invoke(app, ["train", "lenet5", "--dataset", str(path), "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 2
    assert "no labels" in one_error_line(result)
    assert not (tmp_path / "m.keras").exists()
