"""Calibration, training and evaluation data: real images in, float32 model input out.

    source = calibration.open_source("default")          # or a folder, fashion-mnist, .npz, random
    data = calibration.CalibrationData(source, input_shape=(224, 224, 3), preprocess="tf")
    converter.representative_dataset = data.representative_dataset()   # TFLite
    quantize_static(..., calibration_data_reader=data.ort_reader("input"))  # ONNX Runtime
    manifest["calibration"] = data.info()

This package imports only numpy, Pillow and the standard library, and nothing of edgecnn
(it is the lowest layer; the project's base errors live in `calibration.errors`):
`edgecnn evaluate` uses it on boards without TensorFlow.
The ONNX Runtime adapter imports `onnxruntime.quantization` (and so `onnx`) lazily.
"""

# Names are loaded on first use (PEP 562), so `calibration.errors`, which every package
# imports, costs no numpy or Pillow import: `edgecnn --help` stays quick.
_EXPORTS = {
    "calibration.preprocessing": (
        "PREPROCESS_MODES",
        "PreprocessMode",
        "center_crop_box",
        "normalize",
        "preprocess",
        "resize_image",
    ),
    "calibration.representative": ("CalibrationData", "iter_batches"),
    "calibration.sources": (
        "DEFAULT_DATA_DIR",
        "FASHION_MNIST_CLASSES",
        "FASHION_MNIST_DIR",
        "CalibrationWarning",
        "ImageSource",
        "decode_image",
        "open_source",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'calibration' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "CalibrationData",
    "CalibrationWarning",
    "DEFAULT_DATA_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "ImageSource",
    "PREPROCESS_MODES",
    "PreprocessMode",
    "center_crop_box",
    "decode_image",
    "iter_batches",
    "normalize",
    "open_source",
    "preprocess",
    "resize_image",
]
