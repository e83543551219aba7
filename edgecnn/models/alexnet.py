"""AlexNet, single tower.

References:
  - [ImageNet Classification with Deep Convolutional Neural Networks](
      https://papers.nips.cc/paper/4824) (Krizhevsky et al., NIPS 2012)
  - [One weird trick for parallelizing convolutional neural networks](
      https://arxiv.org/abs/1404.5997) (Krizhevsky, 2014)

The 2012 network was split over two GPUs (grouped conv2/4/5, 48/128/192/192/128
filters per tower). This is the one-tower form of the 2014 note, layer for layer
torchvision's `alexnet`: conv widths 64, 192, 384, 256, 256 and no grouping.
At 224x224 with 1000 classes: 61,100,840 parameters (torchvision's figure) and
0.71G multiply-adds; 227x227 (the size the 2012 arithmetic assumes) gives the
same 6x6x256 map before the classifier, hence the same count.

Names: conv1_pad, conv1, [lrn1], pool1, conv2, [lrn2], pool2, conv3, conv4,
conv5, pool5, flatten, dropout6, fc6, dropout7, fc7, predictions.
"""

from __future__ import annotations

import numbers

from edgecnn.models._common import (
    check_arguments,
    global_pool,
    input_shape_of,
    keras,
    layers,
    load_weights,
    model_input,
    model_inputs_of,
    model_row,
    resolve_row_input_shape,
)

# Default and smallest input, preprocessing, fixed-size rule: this model's registry row.
_ROW = model_row("alexnet")


@keras.utils.register_keras_serializable(package="edgecnn")
class LocalResponseNormalization(layers.Layer):
    """Local Response Normalization across channels (Krizhevsky et al., 2012, sec. 3.3).

    b = a / (bias + alpha * sum(a^2 over `2 * depth_radius + 1` adjacent channels))^beta,
    computed by `tf.nn.local_response_normalization` (TFLite: LOCAL_RESPONSE_NORMALIZATION).
    The defaults are the paper's k=2, n=5, alpha=1e-4, beta=0.75; alpha is not
    divided by n (Caffe and torchvision's LocalResponseNorm divide it).
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, inputs):
        import tensorflow as tf  # already imported, quietly, by _common

        return tf.nn.local_response_normalization(
            inputs,
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta)
        return config


def AlexNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    lrn=False,
    dropout=0.5,
):
    """AlexNet (Krizhevsky et al., 2012), single tower as in Krizhevsky, 2014.

    61,100,840 parameters and 0.71G multiply-adds at 224x224 with 1000 classes
    (fc6 alone holds 37.7M: it sees the flattened 6x6x256 map, so its size
    follows the input size). Inputs of at least 63x63. Expects "caffe"
    preprocessing. No published Keras weights: `weights` is None or the path to
    a weights file of this model.

    Args:
      lrn: add Local Response Normalization after the ReLU of conv1 and conv2,
        before their max pools, as in the 2012 paper (k=2, n=5, alpha=1e-4,
        beta=0.75). Off by default, as in the 2014 note and torchvision; adds
        no parameters.
      dropout: the dropout rate before fc6 and before fc7 (0.5 in the paper).
      Other arguments as in `keras.applications`.
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
    if not isinstance(lrn, bool):
        raise ValueError(f"`lrn` must be True or False. Received `lrn={lrn!r}`")
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1). Received `dropout={dropout!r}`")
    input_shape = resolve_row_input_shape(_ROW, input_shape_of(input_shape, input_tensor), include_top=include_top)

    img_input = model_input(input_shape, input_tensor)
    x = layers.ZeroPadding2D(2, name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
    if lrn:
        x = LocalResponseNormalization(name="lrn1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    if lrn:
        x = LocalResponseNormalization(name="lrn2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="dropout6")(x)
        x = layers.Dense(4096, activation="relu", name="fc6")(x)
        x = layers.Dropout(dropout, name="dropout7")(x)
        x = layers.Dense(4096, activation="relu", name="fc7")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    model = keras.Model(model_inputs_of(img_input, input_tensor), x, name=name or "alexnet")
    return load_weights(model, weights)
