"""VGG16/19 and ResNet18..152: shapes, golden counts, twins of keras.applications, weights.

Built at 32x32 with 10 classes where the check allows it; no network (ImageNet
downloads are faked). The twins are the registry rows' `keras_twin`; shapes, smallest
inputs and the fixed-size rule of every model: test_models_registry.
"""

import numpy as np
import pytest

from edgecnn.models import all_model_infos, create_model
from edgecnn.models._common import WeightsError, keras

SLOW = {"resnet101", "resnet152"}  # 40-60M parameters even at 32x32
# This file's families, and their keras.applications twins, as the registry rows say.
FAMILY = [
    info for info in all_model_infos() if info.entrypoint.startswith(("edgecnn.models.vgg:", "edgecnn.models.resnet:"))
]
TWINS = {info.name: info.keras_twin for info in FAMILY if info.keras_twin}
TINY = dict(input_shape=(32, 32, 3), classes=10)


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def _build_twin(name, **kwargs):
    return getattr(keras.applications, TWINS[name])(weights=None, **kwargs)


def _batch(shape=(32, 32, 3), n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


def _randomize(model, seed=0):
    """Non-trivial BatchNormalization statistics and biases, so a mix-up shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )
        elif len(layer.get_weights()) == 2:  # conv or dense: kernel and bias
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape)])


@pytest.fixture(scope="module", params=_params(TWINS))
def twin_pair(request):
    """(name, ours, keras.applications twin) at 32x32, 10 classes, logits.

    "linear", not None: create_model drops None arguments (softmax would stay).
    """
    name = request.param
    ours = create_model(name, classifier_activation="linear", **TINY)
    twin = _build_twin(name, classifier_activation="linear", **TINY)
    yield name, ours, twin
    keras.backend.clear_session()


@pytest.mark.parametrize("name, channels", [("vgg16", 512), ("resnet18", 512), ("resnet50", 2048)])
@pytest.mark.parametrize("pooling", ["avg", "max", None])
def test_no_top_pooling_shapes(name, channels, pooling):
    model = create_model(name, include_top=False, pooling=pooling, input_shape=(64, 64, 3))
    expected = (None, 2, 2, channels) if pooling is None else (None, channels)
    assert model.output_shape == expected
    assert "predictions" not in [layer.name for layer in model.layers]
    if pooling:  # fixed names, as keras.applications names them (in a fresh session)
        keras_names = {"avg": "global_average_pooling2d", "max": "global_max_pooling2d"}
        expected = f"{pooling}_pool" if name.startswith("resnet") else keras_names[pooling]
        assert model.layers[-1].name == expected


# Keras Applications docs for the twins; torchvision (= trainable here) for ResNet18/34.
# ResNet101 is checked against its twin in test_twin_same_layers.
GOLDEN = {  # name: (count_params, trainable parameters) at 224x224x3, 1000 classes
    "vgg16": (138_357_544, 138_357_544),
    "vgg19": (143_667_240, 143_667_240),
    "resnet18": (11_699_112, 11_689_512),
    "resnet34": (21_814_696, 21_797_672),
    "resnet50": (25_636_712, 25_583_592),
    "resnet152": (60_419_944, 60_268_520),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n not in ("resnet18", "resnet34") else n for n in GOLDEN]
)
def test_golden_parameter_counts(name):
    model = create_model(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == GOLDEN[name]
    keras.backend.clear_session()


def test_twin_same_layers(twin_pair):
    name, ours, twin = twin_pair
    # Input layers are auto-named (input_1, input_2, ...); compare everything else.
    assert isinstance(ours.layers[0], keras.layers.InputLayer)
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in twin.layers[1:]]
    for a, b in zip(ours.layers[1:], twin.layers[1:]):
        assert type(a) is type(b)
        assert a.get_config() == b.get_config(), a.name
    assert ours.count_params() == twin.count_params()
    assert ours.name == name and ours.output_shape == (None, 10)
    assert not any(isinstance(layer, keras.Model) for layer in ours.layers)  # flat graph


@pytest.mark.parametrize("twin_pair", ["vgg16", "vgg19", "resnet50"], indirect=True)
def test_twin_weights_round_trip(twin_pair, tmp_path):
    name, _, twin = twin_pair
    _randomize(twin)
    path = tmp_path / f"{name}_twin.h5"
    twin.save_weights(path)
    ours = create_model(name, weights=str(path), classifier_activation="linear", **TINY)
    x = _batch()
    np.testing.assert_allclose(ours(x, training=False).numpy(), twin(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source, target", [("vgg19", "vgg16"), ("resnet18", "resnet50")])
def test_weights_of_another_architecture(source, target, tmp_path):
    path = tmp_path / f"{source}.h5"
    create_model(source, **TINY).save_weights(path)
    with pytest.raises(WeightsError, match=f"does not fit `{target}`"):
        create_model(target, weights=str(path), **TINY)


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        create_model("resnet18", weights=str(tmp_path / "nope.h5"), **TINY)


@pytest.mark.parametrize(
    "name, file, url, file_hash",
    [
        (
            "vgg16",
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "6d6bbae143d832006294945121d1f1fc",
        ),
        (
            "resnet50",
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "4d473c1dd8becc155b73f8504c6f6626",
        ),
    ],
)
def test_imagenet_loads_the_keras_file(name, file, url, file_hash, tmp_path, monkeypatch):
    """weights='imagenet' asks Keras's cache for Keras's own file (download faked)."""
    twin = _build_twin(name, include_top=False, input_shape=(32, 32, 3))
    _randomize(twin)
    cached = tmp_path / "models" / file  # "cached", so EDGECNN_OFFLINE (conftest) lets it pass
    cached.parent.mkdir()
    twin.save_weights(cached)
    asked = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        asked.append((fname, origin, cache_subdir, file_hash))
        return str(cached)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    ours = create_model(name, weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    assert asked == [(file, url, "models", file_hash)]
    x = _batch()
    np.testing.assert_allclose(ours(x, training=False).numpy(), twin(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_imagenet_urls_match_tf_keras():
    from tf_keras.src.applications import resnet as k_resnet
    from tf_keras.src.applications import vgg16 as k_vgg16
    from tf_keras.src.applications import vgg19 as k_vgg19

    from edgecnn.models import resnet, vgg

    for module, variant in ((k_vgg16, "vgg16"), (k_vgg19, "vgg19")):
        for path, suffix in ((module.WEIGHTS_PATH, ""), (module.WEIGHTS_PATH_NO_TOP, "_notop")):
            file = f"{variant}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
            assert vgg._WEIGHTS_URL.format(name=variant, file=file) == path
    for variant, hashes in vgg._WEIGHTS_HASHES.items():
        assert variant in ("vgg16", "vgg19") and len(hashes) == 2
    for variant, hashes in resnet._WEIGHTS_HASHES.items():
        assert hashes == k_resnet.WEIGHTS_HASHES[variant]
        assert resnet._WEIGHTS_URL.format(file="x") == k_resnet.BASE_WEIGHTS_PATH + "x"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights="imagenet", input_shape=(32, 32, 3)), "224x224"),
        (dict(weights="imagenet", classes=10), "classes=10"),
        (dict(weights="imagenet", include_top=False, input_shape=(64, 64, 1)), "3 input channels"),
        (dict(pooling="sum", include_top=False), "pooling='sum'"),
    ],
)
@pytest.mark.parametrize("name", ["vgg19", "resnet101"])
def test_bad_arguments_fail_before_any_download(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model(name, **kwargs)


def test_resnet_any_size_and_input_tensor():
    from edgecnn.models.resnet import ResNet18

    model = ResNet18(input_shape=(None, None, 3), classes=10, name="r18")
    assert model.name == "r18" and model.output_shape == (None, 10)
    assert model(_batch((48, 40, 3)), training=False).shape == (2, 10)
    tensor = keras.layers.Input((32, 32, 3))
    model = ResNet18(input_tensor=tensor, include_top=False, pooling="max")
    assert model.inputs[0] is tensor and model.output_shape == (None, 512)
    with pytest.raises(ValueError, match="at least 32x32"):  # checked on the tensor's shape
        ResNet18(input_tensor=keras.layers.Input((16, 16, 3)))
    with pytest.raises(ValueError, match="must match the shape of `input_tensor`"):
        ResNet18(input_tensor=tensor, input_shape=(64, 64, 3))


def test_basic_blocks_project_only_when_shape_changes():
    model = create_model("resnet18", **TINY)
    names = {layer.name for layer in model.layers}
    assert "conv2_block1_0_conv" not in names  # 64 -> 64, stride 1: identity
    assert {"conv3_block1_0_conv", "conv4_block1_0_conv", "conv5_block1_0_conv"} <= names
    assert "conv3_block2_0_conv" not in names
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(conv.use_bias for conv in convs)
