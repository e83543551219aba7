"""MobileNetV2: inverted residuals with linear bottlenecks, a layer-for-layer twin
of `keras.applications.MobileNetV2`.

Each block expands a thin input with a 1x1 convolution (x6), filters it with a 3x3
depthwise convolution, and projects it back to a thin output with a 1x1
convolution that has no activation; the residual connection joins the thin ends
(the opposite of a ResNet bottleneck, hence "inverted"). `alpha` is the width
multiplier; ImageNet weights exist for alpha 0.35, 0.5, 0.75, 1.0, 1.3 and 1.4 at
input sizes 96, 128, 160, 192 and 224.

Layer names, order and weights are those of the Keras model, so an .h5 file saved
from `keras.applications.MobileNetV2` (or the ImageNet files Keras publishes)
loads into this one with `model.load_weights`.

Reference:
  - [MobileNetV2: Inverted Residuals and Linear Bottlenecks](
    https://arxiv.org/abs/1801.04381) (Sandler et al., CVPR 2018)
"""

from __future__ import annotations

import math
import numbers

from edgecnn.models._common import (
    check_arguments,
    global_pool,
    imagenet_weights_size,
    input_shape_of,
    keras,
    layers,
    load_weights,
    model_input,
    model_inputs_of,
    model_row,
    resolve_row_input_shape,
)

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
# Default and smallest input, preprocessing, fixed-size rule: this model's registry row.
_ROW = model_row("mobilenet_v2")


def MobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """Instantiates the MobileNetV2 architecture.

    Args:
        input_shape: `(height, width, channels)`, at least 32x32. Defaults to
            `(224, 224, 3)`. With `weights="imagenet"` and `include_top=True` it
            must be square and one of 96, 128, 160, 192 or 224.
        alpha: width multiplier, a positive number. With `weights="imagenet"` one
            of 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4.
        include_top: whether to include the classifier (global average pooling and
            the dense layer `predictions`).
        weights: `None` (random initialization, the default: nothing downloads
            unless asked), `"imagenet"`, or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        pooling: `None`, `"avg"` or `"max"`: global pooling when
            `include_top=False`.
        classes: number of classes when `include_top=True`.
        classifier_activation: activation of the `predictions` layer; `None`
            returns logits.
        name: model name; defaults to Keras's `mobilenetv2_{alpha:0.2f}_{rows}`.

    Returns:
        A `keras.Model` (tf_keras), one flat functional graph.
    """
    check_arguments(
        model_name=_ROW.name,
        weights=weights,
        include_top=include_top,
        classes=classes,
        pooling=pooling,
        imagenet_weights=_ROW.imagenet_weights,
        classifier_activation=classifier_activation,
    )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"`alpha` must be a finite positive number. Received `alpha={alpha!r}`")
    if weights == "imagenet" and alpha not in IMAGENET_ALPHAS:
        raise ValueError(
            "If ImageNet weights are being loaded, `alpha` must be one of `0.35`, "
            f"`0.50`, `0.75`, `1.0`, `1.3` or `1.4`. Received `alpha={alpha}`"
        )

    input_shape = resolve_row_input_shape(
        _ROW, input_shape_of(input_shape, input_tensor), include_top=include_top, weights=weights
    )
    rows = input_shape[0]
    if weights == "imagenet":
        rows = imagenet_weights_size(input_shape, sizes=IMAGENET_SIZES, include_top=include_top, family="MobileNetV2")

    img_input = model_input(input_shape, input_tensor)

    first_block_filters = _make_divisible(32 * alpha, 8)
    x = layers.Conv2D(
        first_block_filters,
        kernel_size=3,
        strides=(2, 2),
        padding="same",
        use_bias=False,
        name="Conv1",
    )(img_input)
    x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name="bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)

    x = _inverted_res_block(x, filters=16, alpha=alpha, stride=1, expansion=1, block_id=0)

    x = _inverted_res_block(x, filters=24, alpha=alpha, stride=2, expansion=6, block_id=1)
    x = _inverted_res_block(x, filters=24, alpha=alpha, stride=1, expansion=6, block_id=2)

    x = _inverted_res_block(x, filters=32, alpha=alpha, stride=2, expansion=6, block_id=3)
    x = _inverted_res_block(x, filters=32, alpha=alpha, stride=1, expansion=6, block_id=4)
    x = _inverted_res_block(x, filters=32, alpha=alpha, stride=1, expansion=6, block_id=5)

    x = _inverted_res_block(x, filters=64, alpha=alpha, stride=2, expansion=6, block_id=6)
    x = _inverted_res_block(x, filters=64, alpha=alpha, stride=1, expansion=6, block_id=7)
    x = _inverted_res_block(x, filters=64, alpha=alpha, stride=1, expansion=6, block_id=8)
    x = _inverted_res_block(x, filters=64, alpha=alpha, stride=1, expansion=6, block_id=9)

    x = _inverted_res_block(x, filters=96, alpha=alpha, stride=1, expansion=6, block_id=10)
    x = _inverted_res_block(x, filters=96, alpha=alpha, stride=1, expansion=6, block_id=11)
    x = _inverted_res_block(x, filters=96, alpha=alpha, stride=1, expansion=6, block_id=12)

    x = _inverted_res_block(x, filters=160, alpha=alpha, stride=2, expansion=6, block_id=13)
    x = _inverted_res_block(x, filters=160, alpha=alpha, stride=1, expansion=6, block_id=14)
    x = _inverted_res_block(x, filters=160, alpha=alpha, stride=1, expansion=6, block_id=15)

    x = _inverted_res_block(x, filters=320, alpha=alpha, stride=1, expansion=6, block_id=16)

    # The last 1x1 convolution is not thinned for alpha < 1 (as in the paper).
    last_block_filters = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_block_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name="Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)

    if include_top:
        # Keras leaves this layer unnamed, so it is `global_average_pooling2d` in a
        # fresh session; the name is fixed here so that it never depends on what was
        # built before (it has no weights, so weight files do not care).
        x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    model = keras.Model(
        model_inputs_of(img_input, input_tensor),
        x,
        name=name or f"mobilenetv2_{alpha:0.2f}_{rows}",
    )

    if weights == "imagenet":
        suffix = "" if include_top else "_no_top"
        file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{suffix}.h5"
        return load_weights(model, weights, imagenet_url=BASE_WEIGHT_PATH + file_name, imagenet_file=file_name)
    return load_weights(model, weights)


def _inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    """Expand (1x1, ReLU6) -> depthwise 3x3 (ReLU6) -> project (1x1, linear) [+ input]."""
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"

    if block_id:
        x = layers.Conv2D(
            expansion * in_channels,
            kernel_size=1,
            padding="same",
            use_bias=False,
            activation=None,
            name=prefix + "expand",
        )(x)
        x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=prefix + "expand_BN")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    else:
        # The first block has expansion 1: no expand convolution, Keras's names.
        prefix = "expanded_conv_"

    if stride == 2:
        x = layers.ZeroPadding2D(padding=_correct_pad(x, 3), name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(
        kernel_size=3,
        strides=stride,
        activation=None,
        use_bias=False,
        padding="same" if stride == 1 else "valid",
        name=prefix + "depthwise",
    )(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=prefix + "depthwise_BN")(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)

    # The linear bottleneck: the projection has no activation. The thin output
    # lives in a low-dimensional space where a ReLU would zero (destroy) part of
    # the information; the nonlinearity stays in the wide, expanded space
    # (paper, section 3.2).
    x = layers.Conv2D(
        pointwise_filters,
        kernel_size=1,
        padding="same",
        use_bias=False,
        activation=None,
        name=prefix + "project",
    )(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=prefix + "project_BN")(x)

    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def _correct_pad(inputs, kernel_size):
    """Zero padding for a stride-2 'valid' convolution that matches TF's 'same'."""
    input_size = inputs.shape[1:3]
    if input_size[0] is None:
        adjust = (1, 1)
    else:
        adjust = (1 - input_size[0] % 2, 1 - input_size[1] % 2)
    correct = (kernel_size // 2, kernel_size // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def _make_divisible(v, divisor, min_value=None):
    """`v` rounded to the nearest multiple of `divisor`, never down by more than 10%."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v
