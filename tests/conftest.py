"""Shared test settings and the expensive fixtures (conversions), built once per session."""

import os
from pathlib import Path

# Tests never download: `--weights auto` then means "cached ImageNet weights, else random".
os.environ["EDGECNN_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

FASHION_200 = Path(__file__).parent / "data" / "fashion-mnist-test-200.npz"


@pytest.fixture(scope="session")
def trained_mobilenet_weights(tmp_path_factory):
    """Weights of a MobileNetV2 0.35 at 32x32, 10 classes, trained 6 epochs on the 200
    Fashion-MNIST test images (about 15 s on 2 cores), batch-norm statistics recalibrated.

    Its outputs vary from image to image and it predicts several classes, so a parity or
    agreement check on it can fail; a random-weight MobileNetV2 gives exactly uniform
    outputs (0.1 for every class), which any converter or runtime "matches".
    """
    from edgecnn.training import train_model

    model, info = train_model(
        "mobilenet_v2",
        FASHION_200,
        epochs=6,
        input_size=32,
        alpha=0.35,
        classes=10,
        lr=0.005,
        batch_size=32,
        val_fraction=0.2,
    )
    assert info["batchnorm"]["recalibrated_layers"] > 0
    path = tmp_path_factory.mktemp("trained") / "mobilenet_v2-fmnist.weights.h5"
    model.save_weights(path)
    return path


@pytest.fixture(scope="session")
def exported_int8(tmp_path_factory, trained_mobilenet_weights):
    """That trained MobileNetV2, exported from the zoo as int8 TFLite and ONNX with the default
    calibration set (the shipped photos: 16 for calibration, the next 32 for parity).

    One int8 conversion costs 15-70 s on CI's 2 cores: every test that needs an int8
    artifact shares this one.
    """
    from edgecnn.export import ExportRequest, export

    out = tmp_path_factory.mktemp("artifacts")
    request = ExportRequest(
        model="mobilenet_v2",
        quantization="int8",
        formats=("tflite", "onnx"),
        input_size=32,
        alpha=0.35,
        classes=10,
        weights=str(trained_mobilenet_weights),
        calib_samples=16,
        out=out,
    )
    manifests = export(request)
    return {"out": out, "request": request, "tflite": manifests[0], "onnx": manifests[1]}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory):
    """A small CNN (conv, depthwise, pointwise, dense) trained on the 200 Fashion-MNIST test images
    and exported through edgecnn.export as float32 and int8, TFLite and ONNX (`unit` preprocessing,
    28x28x1). For numerics: a random-weight model's flat outputs make every error look alike.
    Returns the manifests by key ("float32-tflite", "int8-onnx", ...), the images x (float, unit) and y."""
    import json
    from pathlib import Path

    import numpy as np

    from edgecnn._tf import import_keras
    from edgecnn.export import ExportRequest, export

    fmnist = Path(__file__).parent / "data" / "fashion-mnist-test-200.npz"
    with np.load(fmnist) as npz:
        x, y = npz["x"][..., None].astype(np.float32) / 255.0, npz["y"].astype(np.int64)
    keras = import_keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = layers.Input((28, 28, 1))
    h = layers.Conv2D(16, 3, strides=2, activation="relu", name="conv1")(inputs)
    h = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(h)
    h = layers.Conv2D(32, 1, activation="relu", name="pw")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, layers.Dense(10, name="predictions")(h))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("trained_tiny")
    model_path = root / "tiny.keras"
    model.save(model_path)
    (root / "tiny.edgecnn.json").write_text(json.dumps({"preprocess": "unit"}))
    common = dict(
        model=str(model_path), calib=str(fmnist), calib_samples=64, formats=("tflite", "onnx"), out=root / "artifacts"
    )
    found = {"x": x, "y": y, "root": root, "keras_accuracy": float(model.evaluate(x, y, verbose=0)[1])}
    for quantization in ("float32", "int8"):
        for manifest in export(ExportRequest(quantization=quantization, **common)):
            found[f"{quantization}-{manifest['format']}"] = manifest
    return found
