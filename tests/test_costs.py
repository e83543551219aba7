"""The design-note arithmetic of edgecnn.costs, and the profiler agreeing with it."""

from fractions import Fraction

import pytest

from edgecnn.costs import (
    bottlenecked_conv_macs,
    conv_macs,
    depthwise_separable_macs,
    depthwise_separable_ratio,
)
from edgecnn.errors import BadArgument


def test_inception_example_direct_5x5_conv_is_about_120m():
    # 28x28x192 -> 28x28x32 with 5x5 filters: 28*28*32 outputs of 5*5*192 products each
    assert conv_macs(28, 28, 192, 32, 5) == 120_422_400
    assert conv_macs(28, 28, 192, 32, 5) == pytest.approx(120e6, rel=0.01)


def test_inception_example_with_a_16_channel_bottleneck_is_about_12_4m():
    # 28*28*16 * 192 for the 1x1, then 28*28*32 * 5*5*16 for the 5x5
    assert bottlenecked_conv_macs(28, 28, 192, 16, 32, 5) == 2_408_448 + 10_035_200 == 12_443_648
    assert bottlenecked_conv_macs(28, 28, 192, 16, 32, 5) == pytest.approx(12.4e6, rel=0.01)


def test_depthwise_separable_macs():
    # MobileNet's 14x14x512 -> 512 block: 14*14*512*9 depthwise + 14*14*512*512 pointwise
    assert depthwise_separable_macs(14, 14, 512, 512, 3) == 903_168 + 51_380_224


@pytest.mark.parametrize(
    "h, w, c_in, c_out, k",
    [
        (28, 28, 192, 32, 5),
        (14, 14, 512, 512, 3),
        (112, 112, 32, 64, 3),
        (7, 5, 3, 1, 7),
    ],
)
def test_separable_ratio_is_the_ratio_of_the_two_formulas(h, w, c_in, c_out, k):
    exact = Fraction(depthwise_separable_macs(h, w, c_in, c_out, k), conv_macs(h, w, c_in, c_out, k))
    assert exact == Fraction(1, c_out) + Fraction(1, k * k)
    assert depthwise_separable_ratio(c_out, k) == pytest.approx(float(exact), rel=1e-12)


def test_separable_3x3_saves_8_to_9_times():
    assert 1 / 9 < depthwise_separable_ratio(512, 3) < 1 / 8


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_arguments_must_be_positive_integers(bad):
    with pytest.raises(BadArgument, match="Received"):
        conv_macs(28, 28, 192, 32, bad)
    with pytest.raises(BadArgument, match="Received"):
        depthwise_separable_ratio(bad, 3)


# ------------------------------------------------------------------ profiler == formulas


@pytest.fixture(scope="module")
def keras():
    from edgecnn._tf import import_keras

    return import_keras()


def _macs(keras, shape, *layers):
    from edgecnn.profiler import profile_model

    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return profile_model(keras.Model(inputs, x)).macs


def test_profiler_conv2d_equals_conv_macs(keras):
    L = keras.layers
    assert _macs(keras, (28, 28, 192), L.Conv2D(32, 5, padding="same")) == conv_macs(28, 28, 192, 32, 5)


def test_profiler_bottleneck_equals_bottlenecked_conv_macs(keras):
    L = keras.layers
    got = _macs(keras, (28, 28, 192), L.Conv2D(16, 1), L.Conv2D(32, 5, padding="same"))
    assert got == bottlenecked_conv_macs(28, 28, 192, 16, 32, 5)


def test_profiler_depthwise_then_pointwise_equals_depthwise_separable_macs(keras):
    L = keras.layers
    expected = depthwise_separable_macs(14, 14, 64, 128, 3)
    assert _macs(keras, (14, 14, 64), L.DepthwiseConv2D(3, padding="same"), L.Conv2D(128, 1)) == expected
    assert _macs(keras, (14, 14, 64), L.SeparableConv2D(128, 3, padding="same")) == expected
