"""Every registry row, checked against the model it describes (parametrized over list_models()).

A row's facts (default and smallest input, fixed-size rule, ImageNet weights, the
keras.applications twin, extra arguments, auxiliary outputs and the training defaults
that add them) are what the pipelines read; these tests build each model tiny
(32x32, or the smallest size above it, 10 classes) and hold it to its row. Family
tests (test_models_classic, _mobilenet, _vgg_resnet) check what is particular to
an architecture.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import BadArgument
from edgecnn.models import (
    MAIN_OUTPUT,
    all_model_infos,
    create_model,
    get_model_info,
    list_models,
    strip_auxiliary_outputs,
)

# The project's own module: a broken import must fail these tests, not skip them.
pytest.importorskip("tf_keras", reason="tf_keras (edgecnn[export]) is not installed")
from edgecnn.models._common import keras  # noqa: E402

# What a test costs, not a fact of the model: 40-60M parameters even at 32x32.
SLOW = {"resnet101", "resnet152"}
# The Keras Applications arguments every entrypoint takes; the rest are the row's extra_args.
KERAS_ARGS = {
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
}
WITH_AUX = [info.name for info in all_model_infos() if info.auxiliary_outputs]
FIXED = [info.name for info in all_model_infos() if info.fixed_input_size]


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def _tiny_shape(name):
    """32x32 (or the smallest size above it that the model builds at) with its default channels."""
    info = get_model_info(name)
    size = max(32, info.min_input_size)
    return (size, size, info.default_input_shape[2])


def _built_shape(name):
    """What `tiny` builds: the tiny shape where the row says `fixed_input_size`, else any size."""
    shape = _tiny_shape(name)
    return shape if get_model_info(name).fixed_input_size else (None, None, shape[2])


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


@pytest.fixture(scope="module")
def tiny():
    """name -> that model with 10 classes, built once for the module: at the tiny size where its
    row says `fixed_input_size`, else at any size (None x None), which the row promises."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = create_model(name, input_shape=_built_shape(name), classes=10)
        return built[name]

    yield get
    built.clear()
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def with_aux():
    """name -> the model built tiny with its row's training defaults (its auxiliary heads)."""
    built = {}

    def get(name):
        if name not in built:
            info = get_model_info(name)
            built[name] = create_model(name, input_shape=_tiny_shape(name), classes=10, **info.training_kwargs)
        return built[name]

    return get


# ---------------------------------------------------------------- the rows themselves


@pytest.mark.parametrize("name", list_models())
def test_row_matches_its_entrypoint(name):
    info = get_model_info(name)
    factory = info.load_entrypoint()
    accepted = set(inspect.signature(factory).parameters)
    assert KERAS_ARGS <= accepted
    assert set(info.extra_args) == accepted - KERAS_ARGS
    assert set(info.training_kwargs) <= set(info.extra_args)
    assert 0 < info.min_input_size <= info.default_size == info.default_input_shape[1]
    assert info.preprocess in ("tf", "caffe", "unit")
    for alias in (name, *info.aliases):
        assert get_model_info(alias.upper().replace("_", "-")) is info
    if info.imagenet_weights:
        assert info.keras_twin is not None  # the ImageNet files are the twin's
    if info.keras_twin is not None:
        assert callable(getattr(keras.applications, info.keras_twin))


class _Resolved(Exception):
    """Raised by a stand-in `model_input`: the shape the entrypoint resolved, before any layer."""


@pytest.mark.parametrize("name", list_models())
def test_default_input_is_the_rows(name, monkeypatch):
    """Without `input_shape` the entrypoint builds the row's default input (stopped before the
    first layer: full-size builds are slow)."""
    import importlib

    info = get_model_info(name)
    module = importlib.import_module(info.entrypoint.partition(":")[0])

    def stop(input_shape, input_tensor=None):
        raise _Resolved(tuple(input_shape))

    monkeypatch.setattr(module, "model_input", stop)
    with pytest.raises(_Resolved) as resolved:
        info.load_entrypoint()()
    assert resolved.value.args[0] == info.default_input_shape


# ---------------------------------------------------------------- built tiny


@pytest.mark.parametrize("name", _params(list_models()))
def test_builds_tiny_flat(tiny, name):
    model = tiny(name)
    shape = _tiny_shape(name)
    assert model.input_shape == (None, *_built_shape(name))
    assert model.output_shape == (None, 10)
    if get_model_info(name).keras_twin is None:  # twins are named as Keras names them (twin tests)
        assert model.name == name
    assert model.layers[-1].name == MAIN_OUTPUT
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    assert len({layer.name for layer in model.layers}) == len(model.layers)
    probabilities = model(_images(shape), training=False).numpy()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert strip_auxiliary_outputs(model) is model  # a single output stays as it is
    if not get_model_info(name).fixed_input_size:  # any size, not square either
        assert model(_images((48, 40, shape[2])), training=False).shape == (2, 10)


@pytest.mark.parametrize("name", _params(list_models()))
def test_minimum_input_size(tiny, name):
    info = get_model_info(name)
    size, channels = info.min_input_size, info.default_input_shape[2]
    if _built_shape(name)[0] in (None, size):  # built at any size, or at this one
        model = tiny(name)
    else:
        model = create_model(name, input_shape=(size, size, channels), classes=10)
        assert model.input_shape == (None, size, size, channels)
    assert model.output_shape == (None, 10)
    assert model(_images((size, size, channels), n=1), training=False).shape == (1, 10)
    with pytest.raises(ValueError, match=rf"at least {size}x{size}.*\({size - 1}, {size}"):
        create_model(name, input_shape=(size - 1, size, channels), classes=10)


@pytest.mark.parametrize("name", _params(list_models()))
def test_feature_extractor(name):
    """`include_top=False, pooling="avg"`: the 4-D feature map, averaged (the family tests also
    build `pooling=None` and "max")."""
    pooled = create_model(name, input_shape=_tiny_shape(name), include_top=False, pooling="avg")
    (pool,) = [layer for layer in pooled.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    features = pool.input_shape
    assert len(features) == 4 and pool is pooled.layers[-1]
    assert pooled.output_shape == (None, features[-1])
    assert MAIN_OUTPUT not in [layer.name for layer in pooled.layers]
    keras.backend.clear_session()


@pytest.mark.parametrize("name", FIXED)
def test_flattening_classifier_needs_a_fixed_size(name):
    channels = get_model_info(name).default_input_shape[2]
    with pytest.raises(ValueError, match=f"`{name}` with `include_top=True` needs a fixed input size"):
        create_model(name, input_shape=(None, None, channels))
    features = create_model(name, include_top=False, input_shape=(None, None, channels))
    assert features.output_shape[1:3] == (None, None)


@pytest.mark.parametrize("name", [n for n in list_models() if not get_model_info(n).imagenet_weights])
def test_imagenet_weights_rejected(name):
    with pytest.raises(ValueError, match="No ImageNet weights.*weights='imagenet'"):
        create_model(name, weights="imagenet")


# ---------------------------------------------------------------- auxiliary outputs


@pytest.mark.parametrize("name", WITH_AUX)
def test_auxiliary_heads_train_and_strip(with_aux, name):
    info = get_model_info(name)
    model = with_aux(name)
    assert model.output_names == [MAIN_OUTPUT, *info.auxiliary_outputs]
    assert [tuple(shape) for shape in model.output_shape] == [(None, 10)] * (1 + len(info.auxiliary_outputs))
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]

    shape = _tiny_shape(name)
    rng = np.random.default_rng(0)
    images = _images(shape, n=4)
    labels = rng.integers(0, 10, size=4)
    first_aux_fc = next(
        layer
        for layer in model.layers
        if layer.name.startswith(info.auxiliary_outputs[0].split("_")[0]) and isinstance(layer, keras.layers.Dense)
    )
    # One step: eager skips tracing the multi-output train step (10 s on 2 cores).
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        loss_weights=[1.0] + [info.auxiliary_loss_weight] * len(info.auxiliary_outputs),
        run_eagerly=True,
    )
    before = first_aux_fc.get_weights()[0].copy()
    history = model.fit(images, [labels] * len(model.outputs), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before, first_aux_fc.get_weights()[0])

    stripped = strip_auxiliary_outputs(model)
    assert len(stripped.outputs) == 1
    assert stripped.output_shape == (None, 10)
    prefixes = tuple(output.split("_")[0] + "_" for output in info.auxiliary_outputs)  # aux1_, aux2_
    assert not [layer for layer in stripped.layers if layer.name.startswith(prefixes)]
    assert stripped.get_layer(MAIN_OUTPUT) is model.get_layer(MAIN_OUTPUT)
    np.testing.assert_allclose(
        stripped(images, training=False).numpy(), model(images, training=False)[0].numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("name", WITH_AUX)
def test_auxiliary_weights_round_trip(with_aux, name, tmp_path):
    info = get_model_info(name)
    path = tmp_path / f"{name}_aux.h5"
    with_aux(name).save_weights(path)
    loaded = create_model(name, input_shape=_tiny_shape(name), classes=10, weights=str(path), **info.training_kwargs)
    images = _images(_tiny_shape(name))
    for ours, theirs in zip(with_aux(name)(images, training=False), loaded(images, training=False)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", WITH_AUX)
def test_a_saved_model_with_auxiliary_heads_loads_without_them(with_aux, name, tmp_path):
    """export and train load a .keras saved with its auxiliary heads as its main classifier."""
    from edgecnn.loading import load_keras_model

    path = tmp_path / f"{name}_aux.keras"
    with_aux(name).save(path)
    model, facts = load_keras_model(path)
    assert model.output_names == [MAIN_OUTPUT]
    images = _images(_tiny_shape(name))
    np.testing.assert_allclose(
        model(images, training=False).numpy(), with_aux(name)(images, training=False)[0].numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("name", WITH_AUX)
def test_auxiliary_heads_need_top(name):
    info = get_model_info(name)
    with pytest.raises(ValueError, match="Received `include_top=False`"):
        create_model(name, input_shape=_tiny_shape(name), include_top=False, **info.training_kwargs)


def test_strip_needs_a_main_classifier():
    x = keras.Input((4,))
    model = keras.Model(x, [keras.layers.Dense(3, name=n)(x) for n in ("a", "b")], name="two")
    with pytest.raises(BadArgument, match="`two` has 2 outputs \\(a, b\\) and no `predictions`"):
        strip_auxiliary_outputs(model)


@pytest.mark.parametrize("name", list_models())
def test_training_reads_the_row(name):
    """train builds with the row's training defaults and weighs its auxiliary losses by the row;
    prune and cluster drop them."""
    from edgecnn.training.train import AUX_LOSS_WEIGHT, ModelSpec

    info = get_model_info(name)
    spec = ModelSpec.resolve(name, input_size=_tiny_shape(name)[0])
    assert spec.kwargs == info.training_kwargs
    assert spec.aux_loss_weight == (info.auxiliary_loss_weight if info.auxiliary_outputs else AUX_LOSS_WEIGHT)
    spec.drop_training_kwargs()
    assert spec.kwargs == {}


# ---------------------------------------------------------------- pipelines ask the registry


def test_no_pipeline_compares_against_a_model_name():
    """Outside edgecnn/models, no code compares a value with a zoo model's name or alias
    (`if info.name == "googlenet"`): what differs between models is a fact of their row."""
    names = {key for info in all_model_infos() for key in (info.name, *info.aliases)}
    root = Path(__file__).resolve().parents[1] / "edgecnn"
    found = []
    for path in sorted(root.rglob("*.py")):
        if "models" in path.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                constants = [op.value for op in operands if isinstance(op, ast.Constant)]
                for op in operands:  # `name in ("googlenet", ...)`
                    if isinstance(op, (ast.Tuple, ast.List, ast.Set)):
                        constants += [e.value for e in op.elts if isinstance(e, ast.Constant)]
                hits = [c for c in constants if isinstance(c, str) and c.lower() in names]
                if hits:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {hits}")
    assert found == []
