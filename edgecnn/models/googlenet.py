"""GoogLeNet (Inception v1), as in table 1 of the paper.

Reference:
  - [Going Deeper with Convolutions](
      https://arxiv.org/abs/1409.4842) (Szegedy et al., CVPR 2015)

Each inception module is a row of `_INCEPTION_CONFIGS` (table 1): the widths of
its 1x1 branch, 3x3 reduce, 3x3, 5x5 reduce, 5x5 and pool projection. The 1x1
"reduce" convs sit before the 3x3 and 5x5 convs, the 1x1 projection after the
3x3/1 max pool; the four branches are concatenated in that order.

Differences from the paper, all common to reimplementations:
  - The LocalRespNorm layers of figure 3 (after pool1 and after conv2) are left
    out (table 1 does not list them; torchvision leaves them out too).
  - Pools use 'same' padding, which equals Caffe's ceil mode at 224x224 (all
    maps before a pool have even sizes there).
  - torchvision's `googlenet` uses a 3x3 conv where the paper has 5x5 (a known
    slip kept for its weights); this file follows the paper, hence 6,998,552
    parameters at 224x224 with 1000 classes instead of torchvision's 6,624,904.

At 224x224 with 1000 classes and no auxiliary heads: 6,998,552 parameters and
1.58G multiply-adds (the paper: "about 6.8M" and 1.5G).

Names: conv1_pad, conv1, pool1, conv2_reduce, conv2, pool2, inception_3a_1x1,
inception_3a_3x3_reduce, inception_3a_3x3, inception_3a_5x5_reduce,
inception_3a_5x5, inception_3a_pool, inception_3a_pool_proj, inception_3a_output,
..., pool3, pool4, avg_pool, dropout, predictions; with `batch_norm=True` each
conv is followed by `{name}_bn` and `{name}_relu`; auxiliary heads are
aux1_*/aux2_* ending in aux1_predictions/aux2_predictions.
"""

from __future__ import annotations

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

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), table 1 of the paper.
_INCEPTION_CONFIGS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# A 3x3/2 max pool follows these modules; the auxiliary heads follow 4a and 4d.
_POOL_AFTER = {"3b": "pool3", "4e": "pool4"}
_AUX_AFTER = {"4a": "aux1", "4d": "aux2"}

# Default and smallest input, preprocessing, fixed-size rule: this model's registry row.
_ROW = model_row("googlenet")
_BN_EPSILON = 1e-3


def _conv(x, filters, kernel_size, *, strides=1, padding="same", batch_norm, name):
    """Conv + ReLU (the paper), or Conv + BatchNormalization + ReLU with `batch_norm`."""
    if not batch_norm:
        return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu", name=name)(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _inception_block(x, widths, *, batch_norm, name):
    """Four branches (1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool then 1x1), concatenated."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    branch1 = _conv(x, n1x1, 1, batch_norm=batch_norm, name=f"{name}_1x1")
    branch2 = _conv(x, n3x3_reduce, 1, batch_norm=batch_norm, name=f"{name}_3x3_reduce")
    branch2 = _conv(branch2, n3x3, 3, batch_norm=batch_norm, name=f"{name}_3x3")
    branch3 = _conv(x, n5x5_reduce, 1, batch_norm=batch_norm, name=f"{name}_5x5_reduce")
    branch3 = _conv(branch3, n5x5, 5, batch_norm=batch_norm, name=f"{name}_5x5")
    branch4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = _conv(branch4, pool_proj, 1, batch_norm=batch_norm, name=f"{name}_pool_proj")
    return layers.Concatenate(axis=3, name=f"{name}_output")([branch1, branch2, branch3, branch4])


def _auxiliary_head(x, classes, classifier_activation, *, batch_norm, name):
    """The auxiliary classifier of section 5: avg pool 5x5/3, 1x1 conv 128, fc 1024, dropout 0.7.

    The pool is min(5, map size) wide per axis, so the head still builds on the
    2x2 maps of a 32x32 input; at 224x224 it is the paper's 5x5/3 on 14x14 (4x4 out).
    """
    height, width = keras.backend.int_shape(x)[1:3]
    pool_size = (min(5, height), min(5, width))
    x = layers.AveragePooling2D(pool_size, strides=3, name=f"{name}_avg_pool")(x)
    x = _conv(x, 128, 1, batch_norm=batch_norm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    aux_logits=False,
    batch_norm=False,
):
    """GoogLeNet (Inception v1) of Szegedy et al., 2014 (arXiv:1409.4842), table 1.

    6,998,552 parameters and 1.58G multiply-adds at 224x224 with 1000 classes
    (no auxiliary heads); about 6.0M at 32x32 with 10 classes. Inputs of at
    least 32x32. Expects "tf" preprocessing (RGB scaled to [-1, 1]). No
    published Keras weights: `weights` is None or the path to a weights file of
    this model (with the same `aux_logits` and `batch_norm`).

    Args:
      aux_logits: add the two auxiliary classifiers of the paper (after 4a and
        4d) for training; the model then has three outputs
        `[predictions, aux1_predictions, aux2_predictions]` (train with loss
        weights [1, 0.3, 0.3]). They use `classifier_activation` too. Their
        5x5/3 average pool shrinks to min(5, map size) on small inputs, and
        their fc layer sees the flattened pooled map (4x4x128 at 224x224,
        1x1x128 at 32x32), so their size follows the input size. Needs
        `include_top=True` and a fixed input size. Drop them before export
        with `edgecnn.models.strip_auxiliary_outputs`. (The registry row
        trains GoogLeNet with them and names them in `auxiliary_outputs`.)
      batch_norm: add BatchNormalization (no conv bias) between each conv and
        its ReLU, which trains far more easily from scratch than the plain
        2014 network; off by default (the paper has none).
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
    if not isinstance(aux_logits, bool):
        raise ValueError(f"`aux_logits` must be True or False. Received `aux_logits={aux_logits!r}`")
    if not isinstance(batch_norm, bool):
        raise ValueError(f"`batch_norm` must be True or False. Received `batch_norm={batch_norm!r}`")
    if aux_logits and not include_top:
        raise ValueError(
            "`aux_logits=True` needs `include_top=True` (the auxiliary heads are "
            "classifiers). Received `include_top=False`"
        )
    input_shape = resolve_row_input_shape(_ROW, input_shape_of(input_shape, input_tensor), include_top=include_top)
    if aux_logits and None in input_shape[:2]:
        raise ValueError(
            "`googlenet` with `aux_logits=True` needs a fixed input size (its auxiliary "
            f"heads flatten their feature maps). Received `input_shape={input_shape}`"
        )

    img_input = model_input(input_shape, input_tensor)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(img_input)
    x = _conv(x, 64, 7, strides=2, padding="valid", batch_norm=batch_norm, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, 64, 1, batch_norm=batch_norm, name="conv2_reduce")
    x = _conv(x, 192, 3, batch_norm=batch_norm, name="conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)

    aux_outputs = []
    for block, widths in _INCEPTION_CONFIGS.items():
        x = _inception_block(x, widths, batch_norm=batch_norm, name=f"inception_{block}")
        if aux_logits and block in _AUX_AFTER:
            aux_outputs.append(
                _auxiliary_head(x, classes, classifier_activation, batch_norm=batch_norm, name=_AUX_AFTER[block])
            )
        if block in _POOL_AFTER:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=_POOL_AFTER[block])(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.4, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    outputs = [x, *aux_outputs] if aux_logits else x
    model = keras.Model(model_inputs_of(img_input, input_tensor), outputs, name=name or "googlenet")
    return load_weights(model, weights)
