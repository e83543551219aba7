"""Random weights whose outputs vary (edgecnn.training.random_weights), for offline benchmarks."""

import numpy as np


def test_bn_recalibrated_random_weights_make_outputs_vary():
    """A random MobileNetV2 gives the same flat softmax for every image (nothing to compare a
    quantized file against); with each BatchNorm given its input's statistics on real images and
    the classifier scaled, its outputs vary and the logits spread as asked."""
    from edgecnn._tf import import_keras
    from edgecnn.training.random_weights import bn_recalibrated_model

    keras = import_keras()
    model, record = bn_recalibrated_model("mobilenet_v2", input_shape=(32, 32, 3), alpha=0.35, samples=8,
                                          logit_std=2.0)
    assert record["output_spread_before"]["informative"] is False
    after = record["output_spread_after"]
    assert after["informative"] is True and after["distinct_top1"] > 1 and after["samples"] == 8
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert record["batchnorm_layers"] == len(norms) > 10 and record["classifier"] == "predictions"

    import calibration

    images = calibration.CalibrationData(calibration.open_source("default", split="train"), input_shape=(32, 32, 3),
                                         preprocess="tf", samples=8, seed=1).arrays()
    last = norms[-1]  # its statistics are those of its input on these images
    x = keras.Model(model.inputs, last.input).predict(images, verbose=0)
    np.testing.assert_allclose(last.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(last.moving_variance.numpy(), x.var(axis=(0, 1, 2)), rtol=1e-2, atol=1e-6)
    head = model.get_layer("predictions")
    features = keras.Model(model.inputs, head.input).predict(images, verbose=0)
    kernel, bias = head.get_weights()
    logits = features.reshape(len(features), -1) @ kernel + bias
    assert abs(float(logits.std(axis=-1).mean()) - 2.0) < 1e-3
