"""LeNet-5, the digit recognizer of LeCun et al.

Reference:
  - [Gradient-Based Learning Applied to Document Recognition](
      http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf) (LeCun et al., Proc. IEEE 1998)

The layer plan of the paper (figure 2): C1 6@5x5, S2 2x2, C3 16@5x5, S4 2x2,
C5/F 120, F6 84, output. The default form is the one used today (ReLU and max
pooling); `original=True` gives the 1998 form (tanh and average pooling). Both
have 61,706 parameters at 32x32x1 with 10 classes and cost 0.42M multiply-adds.

Names: conv1, pool1, conv2, pool2, flatten, fc1 (120), fc2 (84), predictions.
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

# Default and smallest input, preprocessing, fixed-size rule: this model's registry row.
_ROW = model_row("lenet5")


def LeNet5(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
    original=False,
):
    """LeNet-5 of LeCun et al., 1998 (Proc. IEEE 86(11)).

    61,706 parameters and 0.42M multiply-adds at 32x32x1 with 10 classes, in
    both forms; 44,426 parameters at 28x28 (Fashion-MNIST), where the flattened
    map is 4x4x16 instead of 5x5x16. Inputs of at least 16x16. Expects "unit"
    preprocessing (pixels scaled to [0, 1]). No published weights: `weights`
    is None or the path to a weights file of this model.

    Args:
      original: False (default) for ReLU and max pooling; True for the 1998
        form with tanh and 2x2 average pooling. The 1998 sparse connection
        table of C3 (each of its 16 maps sees a subset of S2's 6), the trainable
        coefficient of S2/S4, the scaled tanh 1.7159*tanh(2a/3) and the RBF
        output units are not reproduced: none maps onto a standard TFLite or
        ONNX op (C3 would need 16 separate convs and a concat, the RBF a
        custom distance layer), so the original form uses full C3 connections
        and a dense softmax output, as most reimplementations do.
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
    if not isinstance(original, bool):
        raise ValueError(f"`original` must be True or False. Received `original={original!r}`")
    input_shape = resolve_row_input_shape(_ROW, input_shape_of(input_shape, input_tensor), include_top=include_top)

    activation = "tanh" if original else "relu"
    pool = layers.AveragePooling2D if original else layers.MaxPooling2D

    img_input = model_input(input_shape, input_tensor)
    x = layers.Conv2D(6, 5, activation=activation, name="conv1")(img_input)
    x = pool(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="conv2")(x)
    x = pool(2, name="pool2")(x)

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=activation, name="fc1")(x)
        x = layers.Dense(84, activation=activation, name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)

    model = keras.Model(model_inputs_of(img_input, input_tensor), x, name=name or "lenet5")
    return load_weights(model, weights)
