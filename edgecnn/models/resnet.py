"""ResNet18/34/50/101/152 (v1: post-activation, Add then ReLU).

Reference:
  - [Deep Residual Learning for Image Recognition](
      https://arxiv.org/abs/1512.03385) (He et al., CVPR 2016)

Each depth is a row of `_RESNET_CONFIGS` (timm style): the residual branch and
the number of blocks in the stages conv2..conv5 (table 1 of the paper).

- ResNet50/101/152 (bottleneck branch) are layer for layer the
  `keras.applications` models: same names, order, shapes, conv biases, the
  stride on the first 1x1 conv (the original Caffe placement; torchvision's
  "v1.5" puts it on the 3x3), so Keras's .h5 files load as they are.
- ResNet18/34 (basic branch: two 3x3 convs) have no Keras twin and no ImageNet
  weights. Their convs carry no bias, as in the paper and torchvision (a
  BatchNormalization follows each one), so their trainable parameters equal the
  torchvision figures: 11,689,512 and 21,797,672 with 1000 classes.

All take the Keras Applications arguments (`weights` defaults to None: nothing
downloads unless asked) and expect "caffe" preprocessing (BGR, ImageNet mean
subtracted). All use the Keras names: conv{stage}_block{i}_{k}_conv/_bn/_relu
for the k-th conv of the branch, _0_conv/_0_bn for a projection shortcut, _add
and _out.
"""

from __future__ import annotations

from typing import NamedTuple

from edgecnn.models._common import (
    check_arguments,
    input_shape_of,
    keras,
    layers,
    load_weights,
    model_input,
    model_inputs_of,
    model_row,
    resolve_row_input_shape,
)


class _ResNetConfig(NamedTuple):
    block: str  # "basic" or "bottleneck"
    blocks: tuple[int, int, int, int]  # blocks in conv2_x .. conv5_x
    use_bias: bool  # conv biases (True in the Keras twins)


_RESNET_CONFIGS = {
    "resnet18": _ResNetConfig("basic", (2, 2, 2, 2), use_bias=False),
    "resnet34": _ResNetConfig("basic", (3, 4, 6, 3), use_bias=False),
    "resnet50": _ResNetConfig("bottleneck", (3, 4, 6, 3), use_bias=True),
    "resnet101": _ResNetConfig("bottleneck", (3, 4, 23, 3), use_bias=True),
    "resnet152": _ResNetConfig("bottleneck", (3, 8, 36, 3), use_bias=True),
}

_STAGE_FILTERS = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)  # conv2_x follows the stem's max pool, no stride of its own
_BN_EPSILON = 1.001e-5  # as in keras.applications

# The files and md5 hashes that keras.applications downloads: (with top, without top).
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/{file}"
_WEIGHTS_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
}


def _conv_bn(x, filters, kernel_size, *, strides=1, use_bias, name, relu=True):
    """Conv, BatchNormalization and (unless relu=False) ReLU, named {name}_conv/_bn/_relu."""
    padding = "same" if kernel_size > 1 else "valid"  # a 1x1 conv pads nothing either way
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _basic_branch(x, filters, stride, use_bias, name):
    """Two 3x3 convs (ResNet18/34); `filters` channels out, stride on the first."""
    x = _conv_bn(x, filters, 3, strides=stride, use_bias=use_bias, name=f"{name}_1")
    return _conv_bn(x, filters, 3, use_bias=use_bias, name=f"{name}_2", relu=False)


def _bottleneck_branch(x, filters, stride, use_bias, name):
    """1x1 reduce, 3x3, 1x1 expand (ResNet50+): 4 * `filters` out, stride on the first 1x1."""
    x = _conv_bn(x, filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_1")
    x = _conv_bn(x, filters, 3, use_bias=use_bias, name=f"{name}_2")
    return _conv_bn(x, 4 * filters, 1, use_bias=use_bias, name=f"{name}_3", relu=False)


_BRANCHES = {"basic": (_basic_branch, 1), "bottleneck": (_bottleneck_branch, 4)}


def _projection_block(x, branch, filters, out_channels, stride, use_bias, name):
    """A block whose shortcut is a 1x1 conv + BN (the paper's option B).

    Used for the first block of a stage when the shape changes (stride 2, or
    more channels out than in): the shortcut then matches the branch's output.
    """
    shortcut = _conv_bn(x, out_channels, 1, strides=stride, use_bias=use_bias, name=f"{name}_0", relu=False)
    x = branch(x, filters, stride, use_bias, name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _identity_block(x, branch, filters, use_bias, name):
    """A block whose shortcut is its input (shape unchanged): every other block."""
    shortcut = x
    x = branch(x, filters, 1, use_bias, name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _resnet(variant, *, include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name):
    config = _RESNET_CONFIGS[variant]
    row = model_row(variant)
    check_arguments(
        model_name=variant,
        weights=weights,
        include_top=include_top,
        classes=classes,
        pooling=pooling,
        imagenet_weights=row.imagenet_weights,
        classifier_activation=classifier_activation,
    )
    input_shape = resolve_row_input_shape(
        row,
        input_shape_of(input_shape, input_tensor),
        include_top=include_top,
        weights=weights,
        require_default=weights == "imagenet" and include_top,
    )

    img_input = model_input(input_shape, input_tensor)
    # Stem: 7x7/2 conv, 3x3/2 max pool, explicit zero padding as in Keras.
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=config.use_bias, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    branch, expansion = _BRANCHES[config.block]
    channels = 64
    for stage, (filters, stride, blocks) in enumerate(zip(_STAGE_FILTERS, _STAGE_STRIDES, config.blocks), start=2):
        out_channels = filters * expansion
        for i in range(1, blocks + 1):
            block_name = f"conv{stage}_block{i}"
            if i == 1 and (stride != 1 or channels != out_channels):
                x = _projection_block(x, branch, filters, out_channels, stride, config.use_bias, block_name)
            else:
                x = _identity_block(x, branch, filters, config.use_bias, block_name)
        channels = out_channels

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":  # named as in keras.applications (not _common.global_pool)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = keras.Model(model_inputs_of(img_input, input_tensor), x, name=name or variant)

    if weights != "imagenet":
        return load_weights(model, weights)
    file = f"{variant}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return load_weights(
        model,
        weights,
        imagenet_url=_WEIGHTS_URL.format(file=file),
        imagenet_file=file,
        file_hash=_WEIGHTS_HASHES[variant][0 if include_top else 1],
    )


def ResNet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """ResNet-18 of He et al., 2015 (arXiv:1512.03385): basic blocks, no ImageNet weights."""
    return _resnet(
        "resnet18",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def ResNet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """ResNet-34 of He et al., 2015 (arXiv:1512.03385): basic blocks, no ImageNet weights."""
    return _resnet(
        "resnet34",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def ResNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """ResNet-50 of He et al., 2015 (arXiv:1512.03385); twin of `keras.applications.ResNet50`."""
    return _resnet(
        "resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def ResNet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """ResNet-101 of He et al., 2015 (arXiv:1512.03385); twin of `keras.applications.ResNet101`."""
    return _resnet(
        "resnet101",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def ResNet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """ResNet-152 of He et al., 2015 (arXiv:1512.03385); twin of `keras.applications.ResNet152`."""
    return _resnet(
        "resnet152",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )
