"""MobileNet v1 and v2: twins of keras.applications, built tiny (32x32, 10 classes).

No network: `weights="imagenet"` is only used where validation fails before any
download, or with the loader replaced by a stub. The twins are the registry rows'
`keras_twin`; shapes and flat graphs of every model: test_models_registry.
"""

import numpy as np
import pytest

from edgecnn.models import create_model, get_model_info, list_models
from edgecnn.models._common import keras, layers
from edgecnn.models.mobilenet_v1 import MobileNet
from edgecnn.models.mobilenet_v2 import MobileNetV2

TINY = {"input_shape": (32, 32, 3), "classes": 10}
# The models with a width multiplier (`--alpha`), by their rows: the MobileNets.
WITH_ALPHA = [n for n in list_models() if "alpha" in get_model_info(n).extra_args]
SMALL_ALPHA = {"mobilenet_v1": 0.25, "mobilenet_v2": 0.35}


def _twin(name):
    """The keras.applications function the registry row names as this model's twin."""
    return getattr(keras.applications, get_model_info(name).keras_twin)


def test_the_alpha_models_are_these():
    assert sorted(WITH_ALPHA) == sorted(SMALL_ALPHA)


@pytest.fixture(scope="module")
def tiny_v1():
    return create_model("mobilenet_v1", alpha=0.25, **TINY)


@pytest.fixture(scope="module")
def tiny_v2():
    return create_model("mobilenet_v2", alpha=0.35, **TINY)


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to download: {args} {kwargs}")

    monkeypatch.setenv("EDGECNN_OFFLINE", "1")
    monkeypatch.setattr(keras.utils, "get_file", refuse)


def _rng_input(seed=0, batch=2):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 32, 32, 3)).astype("float32")


# --- shapes ------------------------------------------------------------------


@pytest.mark.parametrize("name, channels", [("mobilenet_v1", 256), ("mobilenet_v2", 1280)])
@pytest.mark.parametrize("pooling, rank", [(None, 4), ("avg", 2), ("max", 2)])
def test_no_top_pooling(name, channels, pooling, rank):
    model = create_model(name, alpha=SMALL_ALPHA[name], include_top=False, pooling=pooling, input_shape=(32, 32, 3))
    expected = (None, 1, 1, channels) if rank == 4 else (None, channels)
    assert model.output_shape == expected
    assert "predictions" not in [layer.name for layer in model.layers]


def test_input_tensor_sets_the_shape():
    tensor = layers.Input(shape=(32, 32, 3))
    model = MobileNetV2(alpha=0.35, input_tensor=tensor, classes=10)
    assert model.inputs[0] is tensor
    assert model.name == "mobilenetv2_0.35_32"
    assert model.output_shape == (None, 10)


# --- twins of keras.applications ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name, params", [("mobilenet_v1", 4_253_864), ("mobilenet_v2", 3_538_984)])
def test_golden_parameter_count_at_224(name, params):
    model = create_model(name)  # 224x224x3, 1000 classes, alpha 1.0
    assert model.input_shape == (None, 224, 224, 3)
    assert model.count_params() == params


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("mobilenet_v1", {"alpha": 0.25}),
        ("mobilenet_v1", {"alpha": 0.5, "include_top": False, "pooling": "max"}),
        ("mobilenet_v2", {"alpha": 0.35}),
        ("mobilenet_v2", {"alpha": 1.3}),
    ],
)
def test_layers_equal_keras_twin(name, kwargs):
    # Fresh sessions, so that Keras's auto-named layers get their first names.
    keras.backend.clear_session()
    twin = _twin(name)(weights=None, **TINY, **kwargs)
    keras.backend.clear_session()
    ours = create_model(name, **TINY, **kwargs)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in twin.layers]
    assert [w.shape for w in ours.weights] == [w.shape for w in twin.weights]
    assert ours.count_params() == twin.count_params()
    assert ours.name == twin.name
    # Same layers, same configuration, same wiring.
    assert ours.get_config() == twin.get_config()


@pytest.mark.parametrize("name", WITH_ALPHA)
def test_weights_round_trip_from_keras_twin(name, tmp_path):
    alpha = SMALL_ALPHA[name]
    # Logits compare more strictly than probabilities. ("linear", not None: create_model
    # drops None arguments, so None would mean the default softmax.)
    twin = _twin(name)(weights=None, alpha=alpha, classifier_activation="linear", **TINY)
    # Move every weight off its initial value (BN statistics included) so that a
    # weight that failed to load cannot go unnoticed.
    rng = np.random.default_rng(1)
    twin.set_weights([w + rng.uniform(0.0, 0.1, w.shape).astype(w.dtype) for w in twin.get_weights()])
    path = tmp_path / f"{name}_twin.h5"
    twin.save_weights(str(path))

    ours = create_model(name, weights=str(path), alpha=alpha, classifier_activation="linear", **TINY)
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = _rng_input(seed=2)
    np.testing.assert_allclose(ours(x, training=False).numpy(), twin(x, training=False).numpy(), rtol=1e-5, atol=1e-6)


# --- arguments -----------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_ALPHA)
@pytest.mark.parametrize("alpha", [0, -0.5])
def test_non_positive_alpha_raises(name, alpha):
    with pytest.raises(ValueError, match=rf"Received `alpha={alpha}`"):
        create_model(name, alpha=alpha, **TINY)


@pytest.mark.parametrize("factory", [MobileNet, MobileNetV2])
def test_argument_errors_say_what_was_received(factory):
    with pytest.raises(ValueError, match=r"Received `alpha=0`"):
        factory(alpha=0)
    with pytest.raises(ValueError, match=r"Received `input_shape=\(31, 31, 3\)`"):
        factory(input_shape=(31, 31, 3))
    with pytest.raises(ValueError, match=r"Received `classes=10`"):
        factory(weights="imagenet", classes=10)


@pytest.mark.parametrize(
    "factory, kwargs, received",
    [
        (MobileNet, {"alpha": 0.35}, "alpha=0.35"),
        (MobileNet, {"depth_multiplier": 2}, "depth_multiplier=2"),
        (MobileNet, {"input_shape": (96, 96, 3)}, r"input_shape=\(96, 96, 3\)"),
        (MobileNetV2, {"alpha": 0.25}, "alpha=0.25"),
        (MobileNetV2, {"input_shape": (64, 64, 3)}, r"input_shape=\(64, 64, 3\)"),
        (MobileNetV2, {"input_shape": (128, 160, 3)}, r"input_shape=\(128, 160, 3\)"),
    ],
)
def test_imagenet_checks_fail_before_any_download(factory, kwargs, received):
    with pytest.raises(ValueError, match=rf"Received `{received}`"):
        factory(weights="imagenet", **kwargs)


@pytest.mark.parametrize(
    "module, factory, kwargs, file_name",
    [
        (
            "edgecnn.models.mobilenet_v1",
            MobileNet,
            {"alpha": 0.25, "input_shape": (128, 128, 3)},
            "mobilenet_2_5_128_tf.h5",
        ),
        (
            "edgecnn.models.mobilenet_v2",
            MobileNetV2,
            {"alpha": 0.35, "input_shape": (96, 96, 3), "include_top": False},
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
        ),
        # As in Keras: without the top, any size >= 32 works and gets the 224 file.
        (
            "edgecnn.models.mobilenet_v1",
            MobileNet,
            {"alpha": 0.25, "input_shape": (48, 64, 3), "include_top": False},
            "mobilenet_2_5_224_tf_no_top.h5",
        ),
    ],
)
def test_imagenet_asks_for_the_keras_file(monkeypatch, module, factory, kwargs, file_name):
    asked = {}

    def fake_load_weights(model, weights, **kw):
        asked.update(kw, weights=weights)
        return model

    monkeypatch.setattr(f"{module}.load_weights", fake_load_weights)
    factory(weights="imagenet", **kwargs)
    assert asked["weights"] == "imagenet"
    assert asked["imagenet_file"] == file_name
    assert asked["imagenet_url"] == (
        "https://storage.googleapis.com/tensorflow/keras-applications/"
        f"{'mobilenet_v2' if 'v2' in module else 'mobilenet'}/{file_name}"
    )


@pytest.mark.parametrize(
    "alias, name, factory",
    [
        ("mobilenet", "mobilenet_v1", MobileNet),
        ("mobilenetv1", "mobilenet_v1", MobileNet),
        ("MobileNet-V1", "mobilenet_v1", MobileNet),
        ("mobilenetv2", "mobilenet_v2", MobileNetV2),
        ("mobilenet_v2", "mobilenet_v2", MobileNetV2),
    ],
)
def test_aliases_resolve(alias, name, factory):
    info = get_model_info(alias)
    assert info.name == name
    assert info.load_entrypoint() is factory


def test_alpha_changes_parameter_count(tiny_v2):
    half = create_model("mobilenet_v2", alpha=0.5, **TINY)
    assert tiny_v2.count_params() < half.count_params()


# --- structure ------------------------------------------------------------------


def _consumers(model, layer):
    found = []
    for other in model.layers:
        inputs = other.input if isinstance(other.input, list) else [other.input]
        if any(tensor is layer.output for tensor in inputs):
            found.append(other)
    return found


def test_v2_projection_is_a_linear_bottleneck(tiny_v2):
    projections = [layer for layer in tiny_v2.layers if layer.name.endswith("project")]
    assert len(projections) == 17
    for conv in projections:
        assert isinstance(conv, layers.Conv2D) and conv.kernel_size == (1, 1)
        assert conv.activation is keras.activations.linear
        (bn,) = _consumers(tiny_v2, conv)
        assert bn.name == f"{conv.name}_BN"
        # No activation after it: it feeds the residual Add or the next 1x1
        # convolution (the next block's expand, or Conv_1 after the last block).
        for after in _consumers(tiny_v2, bn):
            assert isinstance(after, (layers.Add, layers.Conv2D)), after.name
            assert not isinstance(after, layers.DepthwiseConv2D), after.name
            if isinstance(after, layers.Conv2D):
                assert after.name.endswith("expand") or after.name == "Conv_1"


def test_v1_blocks_are_depthwise_separable(tiny_v1):
    full_convs = [
        layer.name for layer in tiny_v1.layers if type(layer) is layers.Conv2D and layer.kernel_size != (1, 1)
    ]
    assert full_convs == ["conv1"]  # only the stem is a full 3x3 convolution
    for block_id in range(1, 14):
        dw = tiny_v1.get_layer(f"conv_dw_{block_id}")
        pw = tiny_v1.get_layer(f"conv_pw_{block_id}")
        assert isinstance(dw, layers.DepthwiseConv2D) and dw.kernel_size == (3, 3)
        assert type(pw) is layers.Conv2D and pw.kernel_size == (1, 1)
        # depthwise -> BN -> ReLU6 -> pointwise
        assert pw.input is tiny_v1.get_layer(f"conv_dw_{block_id}_relu").output
        assert tiny_v1.get_layer(f"conv_dw_{block_id}_bn").input is dw.output
