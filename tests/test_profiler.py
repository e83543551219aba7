"""edgecnn.profiler: counts checked by hand on tiny graphs, and the published zoo figures."""

import json

import pytest

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.models import create_model, get_model_info, list_models
from edgecnn.profiler import LayerCost, ModelProfile, profile_model, profile_model_file, zoo_costs

F32 = 4  # bytes per activation element


@pytest.fixture(scope="module")
def keras():
    from edgecnn._tf import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def branchy(keras):
    """8x8x3 -> conv 3x3 -> (depthwise 3x3 | conv 1x1) -> add -> global pool -> dense 2."""
    L = keras.layers
    inputs = keras.Input((8, 8, 3), name="image")
    c1 = L.Conv2D(4, 3, padding="same", name="c1")(inputs)
    d1 = L.DepthwiseConv2D(3, padding="same", name="d1")(c1)
    p1 = L.Conv2D(4, 1, name="p1")(c1)
    x = L.Add(name="add")([d1, p1])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(2, name="fc")(x)
    return keras.Model(inputs, outputs, name="branchy")


def test_hand_counted_costs(branchy):
    profile = profile_model(branchy)
    rows = {row.name: row for row in profile.layers}
    assert list(rows) == ["image", "c1", "d1", "p1", "add", "gap", "fc"] or list(rows) == [
        "image",
        "c1",
        "p1",
        "d1",
        "add",
        "gap",
        "fc",
    ]
    # MACs: outputs x products per output
    assert rows["c1"].macs == 8 * 8 * 4 * (3 * 3 * 3)  # 6912
    assert rows["d1"].macs == 8 * 8 * 4 * (3 * 3)  # 2304
    assert rows["p1"].macs == 8 * 8 * 4 * 4  # 1024
    assert rows["fc"].macs == 4 * 2
    assert rows["add"].macs == rows["gap"].macs == rows["image"].macs == 0
    assert profile.macs == 6912 + 2304 + 1024 + 8
    # params: kernel + bias
    assert rows["c1"].params == 3 * 3 * 3 * 4 + 4
    assert rows["d1"].params == 3 * 3 * 4 + 4
    assert rows["p1"].params == 4 * 4 + 4
    assert rows["fc"].params == 4 * 2 + 2
    assert profile.params == 112 + 40 + 20 + 10 == branchy.count_params()
    # shapes and activation bytes, batch 1 float32
    assert rows["image"].output_shape == (8, 8, 3)
    assert rows["gap"].output_shape == (4,)
    assert rows["c1"].activation_bytes == 8 * 8 * 4 * F32
    assert rows["fc"].activation_bytes == 2 * F32
    assert profile.input_shape == (8, 8, 3)
    # liveness: input 768 B; c1 1024 (input freed); then d1 and p1 both alive with c1:
    # c1 + d1 + p1 = 3072 B, before c1 is freed; the add holds d1 + p1 + its output = 3072 B
    assert profile.peak_activation_bytes == 3 * 8 * 8 * 4 * F32 == 3072
    assert profile.peak_activation_layer in ("d1", "p1")
    # weights: float32 4 B each; int8 1 B per kernel weight, 4 B per bias
    assert profile.weight_bytes_float32 == 4 * 182
    kernels, biases = 108 + 36 + 16 + 8, 4 + 4 + 4 + 2
    assert profile.weight_bytes_int8 == kernels + 4 * biases


def test_to_dict_is_plain_json(branchy):
    record = profile_model(branchy).to_dict()
    assert json.loads(json.dumps(record)) == record
    assert {"model", "input_shape", "params", "macs", "peak_activation_bytes", "layers"} <= set(record)
    assert record["input_shape"] == [8, 8, 3]
    assert record["layers"][1] == {
        "name": "c1",
        "type": "Conv2D",
        "output_shape": [8, 8, 4],
        "params": 112,
        "macs": 6912,
        "activation_bytes": 1024,
    }
    assert isinstance(profile_model(branchy), ModelProfile)
    assert isinstance(profile_model(branchy).layers[0], LayerCost)


def test_the_peak_counts_model_inputs_and_keeps_outputs(keras):
    L = keras.layers
    inputs = keras.Input((10, 10, 8))  # 3200 B
    big = L.Conv2D(2, 1, name="squeeze")(inputs)  # 800 B; the input is still needed below
    skip = L.Conv2D(8, 1, name="again")(inputs)  # 3200 B
    model = keras.Model(inputs, [big, skip])
    profile = profile_model(model)
    # both convs read the input, and both outputs live to the end: whichever runs
    # second holds input 3200 + squeeze 800 + again 3200
    assert profile.peak_activation_bytes == 3200 + 800 + 3200
    assert profile.peak_activation_layer in ("again", "squeeze")


def test_grouped_transposed_separable_and_dense_on_any_rank(keras):
    L = keras.layers

    def macs(shape, layer):
        inputs = keras.Input(shape)
        return profile_model(keras.Model(inputs, layer(inputs))).layers[-1].macs

    # groups=2: each of the 4x4x8 outputs sums 3*3*(4/2) products
    assert macs((6, 6, 4), L.Conv2D(8, 3, groups=2)) == 4 * 4 * 8 * 3 * 3 * 2
    # every one of the 4x4x3 input elements is scattered over 3*3*5 outputs
    assert macs((4, 4, 3), L.Conv2DTranspose(5, 3, strides=2, padding="same")) == 4 * 4 * 3 * 9 * 5
    # depth_multiplier 2: 6x6x(3*2) depthwise outputs of 9 products, then 6x6x5 of 6 products
    assert macs((6, 6, 3), L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same")) == 6 * 6 * 6 * 9 + 6 * 6 * 5 * 6
    # Dense applies at each of the 7 positions
    assert macs((7, 16), L.Dense(8)) == 7 * 16 * 8
    assert macs((10,), L.Dense(3)) == 30
    assert macs((9, 4), L.Conv1D(6, 3)) == 7 * 6 * 3 * 4


def test_a_shared_layer_counts_params_once_and_macs_per_call(keras):
    L = keras.layers
    a, b = keras.Input((16,), name="a"), keras.Input((16,), name="b")
    shared = L.Dense(4, name="shared")
    model = keras.Model([a, b], L.Concatenate()([shared(a), shared(b)]))
    profile = profile_model(model)
    calls = [row for row in profile.layers if row.name.startswith("shared")]
    assert [row.name for row in calls] == ["shared", "shared[1]"]
    assert [row.params for row in calls] == [16 * 4 + 4, 0]
    assert [row.macs for row in calls] == [64, 64]
    assert profile.params == model.count_params()
    assert profile.input_shape == ((16,), (16,))


def test_a_nested_model_is_profiled_through(keras):
    L = keras.layers
    # a backbone built for any input size, as keras.applications does with include_top=False
    inner_in = keras.Input((None, None, 3))
    inner_out = L.Conv2D(8, 3, strides=2, padding="same", name="stem")(inner_in)
    backbone = keras.Model(inner_in, inner_out, name="backbone")

    inputs = keras.Input((32, 32, 3))
    x = backbone(inputs)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(5, name="head")(x))
    profile = profile_model(model)
    rows = {row.name: row for row in profile.layers}
    assert rows["backbone/stem"].output_shape == (16, 16, 8)
    assert rows["backbone/stem"].macs == 16 * 16 * 8 * 27
    assert profile.macs == 16 * 16 * 8 * 27 + 8 * 5
    assert profile.params == model.count_params() == (27 * 8 + 8) + (8 * 5 + 5)
    # input 12288 B, then stem 8192 B: the input is freed once the backbone consumed it
    assert profile.peak_activation_bytes == 32 * 32 * 3 * F32 + 16 * 16 * 8 * F32


def test_unknown_sizes_need_an_input_shape(keras):
    L = keras.layers
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, L.Conv2D(4, 3)(inputs))
    with pytest.raises(BadArgument, match="unknown"):
        profile_model(model)
    profile = profile_model(model, input_shape=(10, 10, 3))
    assert profile.macs == 8 * 8 * 4 * 27
    assert profile.input_shape == (10, 10, 3)
    with pytest.raises(BadArgument, match="Received"):
        profile_model(model, input_shape=(10, 10, 1))


def test_subclassed_models_are_refused_clearly(keras):
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(keras.Input((3,)))
    with pytest.raises(EdgecnnError, match="functional and Sequential"):
        profile_model(model)
    with pytest.raises(BadArgument, match="tf_keras Model"):
        profile_model("mobilenet_v2")


def test_sequential_models(keras):
    L = keras.layers
    model = keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(8, 3), L.Flatten(), L.Dense(4)])
    profile = profile_model(model)
    assert profile.macs == 30 * 30 * 8 * 27 + 7200 * 4
    assert profile.params == model.count_params()


def test_saved_model_files(keras, branchy, tmp_path):
    path = tmp_path / "branchy.keras"
    branchy.save(path)
    assert profile_model_file(path) == profile_model(branchy)
    with pytest.raises(EdgecnnError, match="no such model file"):
        profile_model_file(tmp_path / "missing.keras")
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not a model")
    with pytest.raises(EdgecnnError, match="not a loadable Keras model"):
        profile_model_file(broken)


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_profiles_consistently(name):
    """Tiny builds: the rows add up and the params agree with Keras."""
    info = get_model_info(name)
    size = max(32, info.min_input_size)
    model = create_model(name, input_shape=(size, size, info.default_input_shape[2]), classes=10)
    profile = profile_model(model)
    assert profile.params == model.count_params()
    assert sum(row.params for row in profile.layers) == profile.params
    assert sum(row.macs for row in profile.layers) == profile.macs > 0
    assert profile.peak_activation_bytes >= max(row.activation_bytes for row in profile.layers)
    assert profile.weight_bytes_int8 < profile.weight_bytes_float32


def test_zoo_costs_are_cached(monkeypatch, tmp_path):
    import edgecnn.profiler as profiler

    built = []

    def fake(name, **kwargs):
        built.append(name)
        return ModelProfile(
            model=name,
            input_shape=(1, 1, 1),
            params=len(name),
            macs=10 * len(name),
            peak_activation_bytes=0,
            peak_activation_layer="",
            weight_bytes_float32=0,
            weight_bytes_int8=0,
        )

    monkeypatch.setattr(profiler, "profile_zoo_model", fake)
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path))
    rows = zoo_costs()
    assert [row["name"] for row in rows] == built == list_models()
    assert rows[0] == {
        "name": "lenet5",
        "aliases": list(get_model_info("lenet5").aliases),
        "input_shape": [32, 32, 1],
        "params": 6,
        "macs": 60,
    }
    built.clear()
    assert zoo_costs() == rows and built == []  # warm: nothing built
    (tmp_path / "zoo-costs.json").write_text("{not json")
    assert zoo_costs() == rows and built == list_models()  # a broken cache is rebuilt


# ---------------------------------------------------------------- the published figures

# Multiply-adds at 224x224 with 1000 classes, as the papers publish them.
PUBLISHED_MACS = {
    "mobilenet_v2": 300e6,  # Sandler et al. 2018, table 3: 300M
    "mobilenet_v1": 569e6,  # Howard et al. 2017, table 8: 569M
    "vgg16": 15.5e9,  # commonly quoted 15.5G (13 convs 15.35G + 3 FCs 0.12G)
    "resnet50": 3.9e9,  # He et al. 2015, table 1: 3.8 x 10^9 "FLOPs" (multiply-adds)
    # Szegedy et al. 2014 say "1.5 billion multiply-adds", the sum of their Table 1's ops
    # column (1,502M). That table lists conv1 (7x7x3 to 64 channels at 112x112) at 34M,
    # but it costs 118M; with conv1 counted right the paper's own table sums to 1,586M.
    "googlenet": 1502e6 - 34e6 + 118e6,
    "alexnet": 0.7e9,  # single tower (Krizhevsky 2014): about 0.7G
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PUBLISHED_MACS))
def test_published_figures_at_224(name):
    from edgecnn._tf import import_keras
    from edgecnn.profiler import profile_zoo_model

    profile = profile_zoo_model(name)
    import_keras().backend.clear_session()
    assert profile.input_shape == (224, 224, 3)
    assert profile.macs == pytest.approx(PUBLISHED_MACS[name], rel=0.03)
