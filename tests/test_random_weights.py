"""Random weights whose outputs vary (edgecnn.training.random_weights), for offline benchmarks."""

import numpy as np


def test_bn_recalibrated_random_weights_make_outputs_vary():
    """A random MobileNetV2 gives the same flat softmax for every image (nothing to compare a
    quantized file against); with each BatchNorm given its input's statistics on real images and
    the classifier scaled, its outputs vary and the logits spread as asked."""
    from edgecnn._tf import import_keras
    from edgecnn.training.random_weights import bn_recalibrated_model

    keras = import_keras()
    model, record = bn_recalibrated_model("mobilenet_v2", input_shape=(32, 32, 3), alpha=0.35, samples=8, logit_std=2.0)
    assert record["output_spread_before"]["informative"] is False
    after = record["output_spread_after"]
    assert after["informative"] is True and after["distinct_top1"] > 1 and after["samples"] == 8
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert record["batchnorm_layers"] == len(norms) > 10 and record["classifier"] == "predictions"

    import calibration

    images = calibration.CalibrationData(
        calibration.open_source("default", split="train"), input_shape=(32, 32, 3), preprocess="tf", samples=8, seed=1
    ).arrays()
    # Every BatchNorm's statistics are those of its input on these images, in the model as it ends
    # (measured in one pass in training mode: the same up to float rounding, well under 1% of a std).
    inputs = keras.Model(model.inputs, [layer.input for layer in norms]).predict(images, verbose=0)
    for layer, x in zip(norms, inputs):
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        std = np.sqrt(var + layer.epsilon)
        assert np.max(np.abs(layer.moving_mean.numpy() - mean) / std) < 1e-2, layer.name
        assert np.max(np.abs(layer.moving_variance.numpy() - var) / std**2) < 1e-2, layer.name
    head = model.get_layer("predictions")
    features = keras.Model(model.inputs, head.input).predict(images, verbose=0)
    kernel, bias = head.get_weights()
    logits = features.reshape(len(features), -1) @ kernel + bias
    assert abs(float(logits.std(axis=-1).mean()) - 2.0) < 1e-3
