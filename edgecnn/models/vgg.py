"""VGG16 and VGG19, layer for layer the `keras.applications` models.

Reference:
  - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
      https://arxiv.org/abs/1409.1556) (Simonyan & Zisserman, ICLR 2015)

Each variant is a row of `_VGG_CONFIGS` (timm style): conv widths, "M" for a
2x2 max pool that closes a block. Layer names, order and shapes equal those of
`keras.applications.VGG16`/`VGG19`, so their .h5 weight files load as they are.
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

_VGG_CONFIGS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}

# The files and md5 hashes that keras.applications downloads: (with top, without top).
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{name}/{file}"
_WEIGHTS_HASHES = {
    "vgg16": ("64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6"),
}


def _vgg(variant, *, include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name):
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
    x = img_input
    block, conv = 1, 1
    for width in _VGG_CONFIGS[variant]:
        if width == "M":
            x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
            block, conv = block + 1, 1
        else:
            x = layers.Conv2D(width, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{conv}")(x)
            conv += 1

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    model = keras.Model(model_inputs_of(img_input, input_tensor), x, name=name or variant)

    file = f"{variant}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return load_weights(
        model,
        weights,
        imagenet_url=_WEIGHTS_URL.format(name=variant, file=file),
        imagenet_file=file,
        file_hash=_WEIGHTS_HASHES[variant][0 if include_top else 1],
    )


def VGG16(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """VGG16 (configuration D) of Simonyan & Zisserman, 2014 (arXiv:1409.1556).

    The twin of `keras.applications.VGG16`; `weights="imagenet"` loads its files.
    Expects "caffe" preprocessing (BGR, ImageNet mean subtracted).
    """
    return _vgg(
        "vgg16",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def VGG19(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """VGG19 (configuration E) of Simonyan & Zisserman, 2014 (arXiv:1409.1556).

    The twin of `keras.applications.VGG19`; `weights="imagenet"` loads its files.
    Expects "caffe" preprocessing (BGR, ImageNet mean subtracted).
    """
    return _vgg(
        "vgg19",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )
