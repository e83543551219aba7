"""Random weights whose outputs vary: BatchNorm statistics measured on real images.

A randomly initialised deep CNN at inference (moving mean 0, variance 1) shrinks its
activations block after block: MobileNetV2's features end near 1e-11 and the softmax is
exactly uniform, so every quantized variant "agrees" with the Keras model and a parity check
measures nothing. Setting each BatchNorm's moving mean and variance to those of its input on
real images (in graph order) keeps activations at unit scale; the weights are still random,
but the outputs vary and quantization error shows. A trained classifier is also confident
where a random one gives a nearly flat softmax, whose int8 output (scale 1/256) rounds every
class to one or two steps, so the classifier's kernel is scaled for logits with a standard
deviation of `logit_std` across classes.

Used where no trained weights can be had (offline benchmarks, the Arm check, and `edgecnn
export` when `--weights auto` finds no ImageNet weights):

    model, record = bn_recalibrated_model("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35)
    model.save_weights("w.weights.h5")
    record = make_outputs_vary(model, default_images(model, "tf"))  # a model already built

The statistics are measured in one forward pass over all the images, every BatchNorm in
training mode with momentum 0 (it normalizes with, and keeps, its input's batch mean and
biased variance; Dropout is off for the pass): the same as setting each layer's statistics
in graph order from those of the layers before it, at the cost of one inference.
"""

from __future__ import annotations

LOGIT_STD = 3.0  # logit spread across classes, like a confident classifier's


def bn_recalibrated_model(
    name: str,
    *,
    input_shape=None,
    alpha=None,
    images=None,
    samples: int = 16,
    image_seed: int = 1,
    weight_seed: int = 0,
    logit_std: float = LOGIT_STD,
    batch_size: int = 8,
):
    """`(model, record)`: model `name` with seeded random weights, each BatchNorm given the
    statistics of its input on `images` (float32, preprocessed as the model expects; default:
    `samples` images of the default calibration set drawn with `image_seed`), and the final Dense
    layer scaled so its logits spread by `logit_std` (`make_outputs_vary`)."""
    from edgecnn._tf import import_keras, muted_stderr
    from edgecnn.models import create_model, get_model_info

    keras = import_keras()
    info = get_model_info(name)
    keras.backend.clear_session()
    keras.utils.set_random_seed(weight_seed)
    kwargs = {"alpha": alpha} if alpha is not None else {}
    with muted_stderr():
        model = create_model(info.name, weights=None, input_shape=input_shape, **kwargs)
    if images is None:
        images = default_images(model, info.preprocess, samples=samples, seed=image_seed)
    record = make_outputs_vary(model, images, logit_std=logit_std, batch_size=batch_size)
    return model, {"model": info.name, **record, "image_seed": image_seed, "weight_seed": weight_seed}


def default_images(model, preprocess: str, *, samples: int = 16, seed: int = 1):
    """`samples` images of the default calibration set's train split, drawn with `seed`, at
    `model`'s input shape and preprocessed with `preprocess`."""
    import calibration

    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return calibration.CalibrationData(
        calibration.open_source("default", split="train"),
        input_shape=shape,
        preprocess=preprocess,
        samples=samples,
        seed=seed,
    ).arrays()


def make_outputs_vary(model, images, *, logit_std: float = LOGIT_STD, batch_size: int = 8, spread: bool = True) -> dict:
    """In place: each BatchNorm of `model` given the mean and variance of its input on `images`
    (one pass, see the module's docstring), then the final Dense layer scaled so its logits
    spread by `logit_std`. Returns what was done and, with `spread`, the output spread
    (`edgecnn.runtime.output_spread`) before and after (two more inferences)."""
    import numpy as np

    from edgecnn._tf import import_keras
    from edgecnn.runtime import output_spread

    keras = import_keras()
    images = np.asarray(images, np.float32)
    before = output_spread(model.predict(images, verbose=0, batch_size=batch_size)) if spread else None
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    head = _classifier(model, keras)
    # The classifier's input, measured in the same pass: with momentum 0 each BatchNorm normalizes
    # with the statistics it keeps, so these are the features inference will see (a second
    # inference, traced by predict, cost a MobileNetV2 export about a second).
    features_of = keras.Model(model.inputs, head.input) if head is not None else model
    if not set(map(id, norms)) <= set(map(id, features_of.layers)):  # a BatchNorm off that path (an
        features_of = model  # auxiliary head): the whole model
    features = None
    if norms:
        dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
        saved = [(layer.momentum, layer.fused) for layer in norms], [layer.rate for layer in dropouts]
        try:
            for layer in norms:
                # Unfused: the fused kernel keeps a Bessel-corrected variance for its moving average.
                layer.momentum, layer.fused = 0.0, False
            for layer in dropouts:
                layer.rate = 0
            measured = features_of(images, training=True)
            features = np.asarray(measured) if features_of is not model else None
        finally:
            for layer, (momentum, fused) in zip(norms, saved[0]):
                layer.momentum, layer.fused = momentum, fused
            for layer, rate in zip(dropouts, saved[1]):
                layer.rate = rate
    scale = None
    if head is not None:
        if features is None:  # not measured in the pass: by inference, after it
            features = keras.Model(model.inputs, head.input).predict(images, verbose=0, batch_size=batch_size)
        kernel, *rest = head.get_weights()
        logits = features.reshape(len(features), -1) @ kernel + (rest[0] if rest else 0)
        scale = float(logit_std / max(float(logits.std(axis=-1).mean()), 1e-12))
        head.set_weights([kernel * scale, *[b * scale for b in rest]])
    after = output_spread(model.predict(images, verbose=0, batch_size=batch_size)) if spread else None
    return {
        "batchnorm_layers": len(norms),
        "images": int(len(images)),
        "classifier": head.name if head is not None else None,
        "classifier_scale": scale,
        "logit_std": logit_std if head is not None else None,
        **({"output_spread_before": before, "output_spread_after": after} if spread else {}),
    }


def _classifier(model, keras):
    """The final Dense layer (`predictions`), if the model ends with one."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.Dense):
            return layer
        if layer.count_params():
            return None
    return None
