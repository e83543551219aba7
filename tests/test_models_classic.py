"""LeNet-5, AlexNet and GoogLeNet: golden counts, structure, options, weights files.

Tiny inputs (32x32, 10 classes) except where a published count needs 224x224.
What every model shares (shapes, smallest input, fixed-size rule, feature extractor,
ImageNet refusal, auxiliary heads) is tested over the registry in test_models_registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.models import create_model

# The project's own module: a broken import must fail these tests, not skip them. Only
# tf_keras (edgecnn[export]) may be missing, and then they skip saying so.
pytest.importorskip("tf_keras", reason="tf_keras (edgecnn[export]) is not installed")
from edgecnn.models._common import keras  # noqa: E402

layers = keras.layers


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
        assert isinstance(model.get_layer(source), (layers.BatchNormalization, layers.Activation)), source
        (source,) = inbound[source]
    return model.get_layer(source)


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


@pytest.fixture(scope="module")
def tiny_models():
    return {
        "lenet5": create_model("lenet5", input_shape=(32, 32, 1), classes=10),
        "googlenet": create_model("googlenet", input_shape=(32, 32, 3), classes=10),
    }


# ---------------------------------------------------------------- weights files and inputs


def test_weights_round_trip_h5(tiny_models, tmp_path):
    model = tiny_models["lenet5"]
    path = tmp_path / "lenet5.h5"
    model.save_weights(path)
    loaded = create_model("lenet5", classes=10, weights=str(path))
    for saved, restored in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    images = _images((32, 32, 1))
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)


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
    activation, pool = ("tanh", layers.AveragePooling2D) if original else ("relu", layers.MaxPooling2D)
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
    np.testing.assert_allclose(
        restored.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )

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
    model = (
        tiny_models["googlenet"]
        if not batch_norm
        else create_model("googlenet", input_shape=(32, 32, 3), classes=10, batch_norm=True)
    )
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
