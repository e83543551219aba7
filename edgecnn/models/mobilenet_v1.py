"""MobileNet (v1): depthwise separable convolutions, a layer-for-layer twin of
`keras.applications.MobileNet`.

Each standard 3x3 convolution is factored into a 3x3 depthwise convolution (one
filter per input channel) and a 1x1 pointwise convolution that mixes channels,
each followed by batch normalization and ReLU6. Two multipliers trade accuracy
for cost:

- the width multiplier `alpha` thins every layer to `int(filters * alpha)`
  channels (the paper's 1.0, 0.75, 0.5 and 0.25 have ImageNet weights);
- the resolution multiplier is simply the input size: any square input of at
  least 32x32 works, and ImageNet weights exist for 128, 160, 192 and 224.

`depth_multiplier` is the number of depthwise output channels per input channel
(Keras's docstring calls it the resolution multiplier; it is not).

Layer names, order and weights are those of the Keras model, so an .h5 file saved
from `keras.applications.MobileNet` (or the ImageNet files Keras publishes) loads
into this one with `model.load_weights`.

Reference:
  - [MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
    Applications](https://arxiv.org/abs/1704.04861) (Howard et al., 2017)
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

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
IMAGENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
IMAGENET_SIZES = (128, 160, 192, 224)
_ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
# Default and smallest input, preprocessing, fixed-size rule: this model's registry row.
_ROW = model_row("mobilenet_v1")


def MobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """Instantiates the MobileNet (v1) architecture.

    Args:
        input_shape: `(height, width, channels)`, at least 32x32. Defaults to
            `(224, 224, 3)`. With `weights="imagenet"` and `include_top=True` it
            must be square and one of 128, 160, 192 or 224.
        alpha: width multiplier, a positive number. With `weights="imagenet"` one
            of 0.25, 0.5, 0.75 or 1.0.
        depth_multiplier: depthwise output channels per input channel (1 for
            ImageNet weights).
        dropout: dropout rate before the classifier.
        include_top: whether to include the classifier (global average pooling,
            dropout, a 1x1 convolution `conv_preds` and the activation
            `predictions`).
        weights: `None` (random initialization, the default: nothing downloads
            unless asked), `"imagenet"`, or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        pooling: `None`, `"avg"` or `"max"`: global pooling when
            `include_top=False`.
        classes: number of classes when `include_top=True`.
        classifier_activation: activation of the `predictions` layer; `None`
            returns logits.
        name: model name; defaults to Keras's `mobilenet_{alpha:0.2f}_{rows}`.

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
    if int(32 * alpha) < 1:
        raise ValueError(
            "`alpha` is too small: the first convolution would have no filters "
            f"(MobileNet needs `alpha >= 1/32`). Received `alpha={alpha!r}`"
        )
    if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, numbers.Integral) or depth_multiplier < 1:
        raise ValueError(
            f"`depth_multiplier` must be a positive integer. Received `depth_multiplier={depth_multiplier!r}`"
        )
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received `dropout={dropout!r}`")
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError(
                "If ImageNet weights are being loaded, `depth_multiplier` must be 1. "
                f"Received `depth_multiplier={depth_multiplier}`"
            )
        if alpha not in IMAGENET_ALPHAS:
            raise ValueError(
                "If ImageNet weights are being loaded, `alpha` must be one of "
                f"`0.25`, `0.50`, `0.75` or `1.0`. Received `alpha={alpha}`"
            )

    input_shape = resolve_row_input_shape(
        _ROW, input_shape_of(input_shape, input_tensor), include_top=include_top, weights=weights
    )
    rows = input_shape[0]
    if weights == "imagenet":
        rows = imagenet_weights_size(input_shape, sizes=IMAGENET_SIZES, include_top=include_top, family="MobileNet")

    img_input = model_input(input_shape, input_tensor)

    x = _conv_block(img_input, 32, alpha, strides=(2, 2))
    x = _depthwise_conv_block(x, 64, alpha, depth_multiplier, block_id=1)

    x = _depthwise_conv_block(x, 128, alpha, depth_multiplier, strides=(2, 2), block_id=2)
    x = _depthwise_conv_block(x, 128, alpha, depth_multiplier, block_id=3)

    x = _depthwise_conv_block(x, 256, alpha, depth_multiplier, strides=(2, 2), block_id=4)
    x = _depthwise_conv_block(x, 256, alpha, depth_multiplier, block_id=5)

    x = _depthwise_conv_block(x, 512, alpha, depth_multiplier, strides=(2, 2), block_id=6)
    for block_id in range(7, 12):
        x = _depthwise_conv_block(x, 512, alpha, depth_multiplier, block_id=block_id)

    x = _depthwise_conv_block(x, 1024, alpha, depth_multiplier, strides=(2, 2), block_id=12)
    x = _depthwise_conv_block(x, 1024, alpha, depth_multiplier, block_id=13)

    if include_top:
        # Keras leaves this layer unnamed, so it is `global_average_pooling2d` in a
        # fresh session; the name is fixed here so that it never depends on what was
        # built before (it has no weights, so weight files do not care).
        x = layers.GlobalAveragePooling2D(keepdims=True, name="global_average_pooling2d")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        # The classifier is a 1x1 convolution, as in the Keras (and original TF-Slim)
        # model, so its weights load unchanged; `predictions` is the final layer.
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        x = layers.Activation(activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    model = keras.Model(
        model_inputs_of(img_input, input_tensor),
        x,
        name=name or f"mobilenet_{alpha:0.2f}_{rows}",
    )

    if weights == "imagenet":
        suffix = "" if include_top else "_no_top"
        file_name = f"mobilenet_{_ALPHA_TEXT[float(alpha)]}_{rows}_tf{suffix}.h5"
        return load_weights(model, weights, imagenet_url=BASE_WEIGHT_PATH + file_name, imagenet_file=file_name)
    return load_weights(model, weights)


def _conv_block(inputs, filters, alpha, kernel=(3, 3), strides=(1, 1)):
    """The stem: a full 3x3 convolution, batch normalization and ReLU6."""
    filters = int(filters * alpha)
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, strides=strides, name="conv1")(inputs)
    x = layers.BatchNormalization(axis=-1, name="conv1_bn")(x)
    return layers.ReLU(6.0, name="conv1_relu")(x)


def _depthwise_conv_block(inputs, pointwise_conv_filters, alpha, depth_multiplier=1, strides=(1, 1), block_id=1):
    """A depthwise separable convolution: depthwise 3x3 -> BN -> ReLU6 -> 1x1 -> BN -> ReLU6."""
    pointwise_conv_filters = int(pointwise_conv_filters * alpha)

    if strides == (1, 1):
        x = inputs
    else:
        # TF-Slim's "same" padding for stride 2 pads bottom/right only.
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(inputs)
    x = layers.DepthwiseConv2D(
        (3, 3),
        padding="same" if strides == (1, 1) else "valid",
        depth_multiplier=depth_multiplier,
        strides=strides,
        use_bias=False,
        name=f"conv_dw_{block_id}",
    )(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)

    x = layers.Conv2D(
        pointwise_conv_filters,
        (1, 1),
        padding="same",
        use_bias=False,
        strides=(1, 1),
        name=f"conv_pw_{block_id}",
    )(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)
