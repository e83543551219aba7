"""LeNet-5, AlexNet and GoogLeNet: shapes, golden counts, options, weights files.

Tiny inputs (32x32, 10 classes) except where a published count needs 224x224.
AlexNet cannot be smaller than 63x63, so its tiny size is 64x64.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.models import create_model, get_model_info

# The project's own module: a broken import must fail these tests, not skip them. Only
# tf_keras (edgecnn[export]) may be missing, and then they skip saying so.
pytest.importorskip("tf_keras", reason="tf_keras (edgecnn[export]) is not installed")
from edgecnn.models._common import keras  # noqa: E402

layers = keras.layers

TINY = {  # name -> (input_shape, output shape with 10 classes)
    "lenet5": ((32, 32, 1), (None, 10)),
    "alexnet": ((64, 64, 3), (None, 10)),
    "googlenet": ((32, 32, 3), (None, 10)),
}
MIN_SIZE = {"lenet5": 16, "alexnet": 63, "googlenet": 32}


def _inbound(model):
    """Layer name -> names of the layers feeding it (from the functional config)."""
    return {
        entry["name"]: [node[0] for nodes in entry["inbound_nodes"] for node in nodes]
        for entry in model.get_config()["layers"]
    }


def _producer_conv(model, inbound, name):
    """The conv layer whose output reaches `name`, looking through BN and ReLU layers."""
    (source,) = inbound[name]
    while not isinstance(model.get_layer(source), layers.Conv2D):
        assert isinstance(model.get_layer(source),
                          (layers.BatchNormalization, layers.Activation)), source
        (source,) = inbound[source]
    return model.get_layer(source)


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


@pytest.fixture(scope="module")
def tiny_models():
    return {name: create_model(name, input_shape=shape, classes=10)
            for name, (shape, _) in TINY.items()}


@pytest.fixture(scope="module")
def googlenet_aux():
    return create_model("googlenet", input_shape=(32, 32, 3), classes=10, aux_logits=True)


# ---------------------------------------------------------------- all three

@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_flat_graph(tiny_models, name):
    model = tiny_models[name]
    shape, output_shape = TINY[name]
    assert model.input_shape == (None, *shape)
    assert model.output_shape == output_shape
    assert model.name == name
    assert model.layers[-1].name == "predictions"
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    probabilities = model(_images(shape), training=False).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(TINY))
def test_feature_extractor(name):
    shape, _ = TINY[name]
    features = create_model(name, input_shape=shape, include_top=False)
    assert len(features.output_shape) == 4
    pooled = create_model(name, input_shape=shape, include_top=False, pooling="avg")
    assert pooled.output_shape == (None, features.output_shape[-1])
    assert "predictions" not in [layer.name for layer in pooled.layers]


@pytest.mark.parametrize("name", sorted(MIN_SIZE))
def test_minimum_input_size(name):
    size, channels = MIN_SIZE[name], TINY[name][0][2]
    model = create_model(name, input_shape=(size, size, channels), classes=10)
    assert model.output_shape == (None, 10)
    # The catalog never promises a size the graph cannot build.
    assert get_model_info(name).min_input_size >= size
    with pytest.raises(ValueError, match=f"at least {size}x{size}.*{size - 1}"):
        create_model(name, input_shape=(size - 1, size, channels), classes=10)


@pytest.mark.parametrize("name", ["lenet5", "alexnet"])
def test_flattening_classifier_needs_a_fixed_size(name):
    channels = TINY[name][0][2]
    with pytest.raises(ValueError, match=f"`{name}` with `include_top=True` needs a fixed input size"):
        create_model(name, input_shape=(None, None, channels))
    features = create_model(name, include_top=False, input_shape=(None, None, channels))
    assert features.output_shape[1:3] == (None, None)


@pytest.mark.parametrize("name", sorted(TINY))
def test_imagenet_weights_rejected(name):
    with pytest.raises(ValueError, match="No ImageNet weights.*weights='imagenet'"):
        create_model(name, weights="imagenet")


def test_weights_round_trip_h5(tiny_models, tmp_path):
    model = tiny_models["lenet5"]
    path = tmp_path / "lenet5.h5"
    model.save_weights(path)
    loaded = create_model("lenet5", classes=10, weights=str(path))
    for saved, restored in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    images = _images((32, 32, 1))
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-6)


def test_weights_that_do_not_fit(tiny_models, tmp_path):
    from edgecnn.models._common import WeightsError

    path = tmp_path / "lenet5_32.h5"
    tiny_models["lenet5"].save_weights(path)
    with pytest.raises(WeightsError, match="does not fit `lenet5`"):
        create_model("lenet5", input_shape=(28, 28, 1), classes=10, weights=str(path))


def test_input_tensor_sets_the_shape():
    model = create_model("lenet5", input_tensor=layers.Input((28, 28, 1)))
    assert model.input_shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="at least 16x16"):
        create_model("lenet5", input_tensor=layers.Input((12, 12, 1)))


# ---------------------------------------------------------------- LeNet-5

@pytest.mark.parametrize("original", [False, True])
def test_lenet5_parameters_and_form(original):
    model = create_model("lenet5", original=original)
    assert model.input_shape == (None, 32, 32, 1)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 61_706
    activation, pool = ("tanh", layers.AveragePooling2D) if original else \
        ("relu", layers.MaxPooling2D)
    for layer_name in ("conv1", "conv2", "fc1", "fc2"):
        assert model.get_layer(layer_name).activation.__name__ == activation
    for layer_name in ("pool1", "pool2"):
        assert type(model.get_layer(layer_name)) is pool


def test_lenet5_fashion_mnist_size():
    model = create_model("lenet5", input_shape=(28, 28, 1), classes=10)
    assert model.count_params() == 44_426
    assert model.get_layer("pool2").output_shape == (None, 4, 4, 16)


def test_lenet5_rejects_bad_option():
    with pytest.raises(ValueError, match="Received `original='yes'`"):
        create_model("lenet5", original="yes")


# ---------------------------------------------------------------- AlexNet

@pytest.mark.slow  # two 61M-parameter builds: 4-9 s on 2 cores
def test_alexnet_torchvision_count_at_224_and_227():
    for size in (224, 227):
        model = create_model("alexnet", input_shape=(size, size, 3))
        assert model.get_layer("pool5").output_shape == (None, 6, 6, 256)
        assert model.count_params() == 61_100_840
        assert model.output_shape == (None, 1000)
        del model
        keras.backend.clear_session()


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_alexnet_options(tmp_path):
    model = create_model("alexnet", input_shape=(64, 64, 3), include_top=False, lrn=True)
    names = [layer.name for layer in model.layers]
    assert names.index("conv1") < names.index("lrn1") < names.index("pool1")
    assert names.index("conv2") < names.index("lrn2") < names.index("pool2")
    no_lrn = create_model("alexnet", input_shape=(64, 64, 3), include_top=False)
    assert model.count_params() == no_lrn.count_params()

    # The LRN layer serializes: a whole-model .h5 loads back without custom_objects.
    path = tmp_path / "alexnet_lrn.h5"
    model.save(path)
    restored = keras.models.load_model(path, compile=False)
    images = _images((64, 64, 3)) * 255.0
    np.testing.assert_allclose(restored.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)

    top = create_model("alexnet", input_shape=(64, 64, 3), classes=10, dropout=0.2)
    assert top.get_layer("dropout6").rate == top.get_layer("dropout7").rate == 0.2
    with pytest.raises(ValueError, match="Received `dropout=1.5`"):
        create_model("alexnet", dropout=1.5)
    with pytest.raises(ValueError, match="Received `lrn=1`"):
        create_model("alexnet", lrn=1)


# ---------------------------------------------------------------- GoogLeNet

def test_googlenet_parameters_at_224():
    model = create_model("googlenet")
    assert 6_600_000 <= model.count_params() <= 7_000_000
    assert model.count_params() == 6_998_552
    assert model.get_layer("inception_5b_output").output_shape == (None, 7, 7, 1024)
    assert not [layer for layer in model.layers if layer.name.startswith("aux")]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_googlenet_inception_bottlenecks(tiny_models, batch_norm):
    model = tiny_models["googlenet"] if not batch_norm else create_model(
        "googlenet", input_shape=(32, 32, 3), classes=10, batch_norm=True)
    inbound = _inbound(model)
    blocks = sorted({name.split("_")[1] for name in inbound if name.startswith("inception_")})
    assert blocks == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    for block in blocks:
        prefix = f"inception_{block}"
        for size in (3, 5):
            conv = model.get_layer(f"{prefix}_{size}x{size}")
            assert conv.kernel_size == (size, size)
            reduce = _producer_conv(model, inbound, conv.name)
            assert reduce.name == f"{prefix}_{size}x{size}_reduce"
            assert reduce.kernel_size == (1, 1)
        projection = model.get_layer(f"{prefix}_pool_proj")
        assert projection.kernel_size == (1, 1)
        (pool_name,) = inbound[projection.name]
        pool = model.get_layer(pool_name)
        assert isinstance(pool, layers.MaxPooling2D)
        assert (pool.pool_size, pool.strides) == ((3, 3), (1, 1))
        assert len(inbound[f"{prefix}_output"]) == 4
    if batch_norm:
        assert not model.get_layer("inception_3a_3x3").use_bias
        assert isinstance(model.get_layer("inception_3a_3x3_bn"), layers.BatchNormalization)


def test_googlenet_aux_heads_train_and_strip(googlenet_aux):
    from edgecnn.models.googlenet import strip_auxiliary_heads

    model = googlenet_aux
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    assert [tuple(shape) for shape in model.output_shape] == [(None, 10)] * 3
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]

    rng = np.random.default_rng(0)
    images = _images((32, 32, 3), n=4)
    labels = rng.integers(0, 10, size=4)
    # One step: eager skips tracing the three-output train step (10 s on 2 cores).
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  loss_weights=[1.0, 0.3, 0.3], run_eagerly=True)
    before = model.get_layer("aux1_fc").get_weights()[0].copy()
    history = model.fit(images, [labels, labels, labels], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before, model.get_layer("aux1_fc").get_weights()[0])

    stripped = strip_auxiliary_heads(model)
    assert len(stripped.outputs) == 1
    assert stripped.output_shape == (None, 10)
    assert not [layer for layer in stripped.layers if layer.name.startswith("aux")]
    assert stripped.get_layer("predictions") is model.get_layer("predictions")
    np.testing.assert_allclose(stripped(images, training=False).numpy(),
                               model(images, training=False)[0].numpy(), rtol=1e-6)


def test_strip_is_a_no_op_without_aux_heads(tiny_models):
    from edgecnn.models.googlenet import strip_auxiliary_heads

    model = tiny_models["googlenet"]
    assert strip_auxiliary_heads(model) is model


def test_googlenet_aux_weights_round_trip(googlenet_aux, tmp_path):
    path = tmp_path / "googlenet_aux.h5"
    googlenet_aux.save_weights(path)
    loaded = create_model("googlenet", input_shape=(32, 32, 3), classes=10,
                          aux_logits=True, weights=str(path))
    images = _images((32, 32, 3))
    for ours, theirs in zip(googlenet_aux(images, training=False),
                            loaded(images, training=False)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_googlenet_aux_needs_top():
    with pytest.raises(ValueError, match="Received `include_top=False`"):
        create_model("googlenet", input_shape=(32, 32, 3), include_top=False, aux_logits=True)
