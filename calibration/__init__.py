"""Calibration, training and evaluation data: real images in, float32 model input out.

    source = calibration.open_source("default")          # or a folder, fashion-mnist, .npz, random
    data = calibration.CalibrationData(source, input_shape=(224, 224, 3), preprocess="tf")
    converter.representative_dataset = data.representative_dataset()   # TFLite
    quantize_static(..., calibration_data_reader=data.ort_reader("input"))  # ONNX Runtime
    manifest["calibration"] = data.info()

This package imports only numpy, Pillow and the standard library (and
`edgecnn.errors`): `edgecnn evaluate` uses it on boards without TensorFlow.
The ONNX Runtime adapter imports `onnxruntime.quantization` (and so `onnx`) lazily.
"""

from calibration.preprocessing import (
    PREPROCESS_MODES,
    PreprocessMode,
    center_crop_box,
    normalize,
    preprocess,
    resize_image,
)
from calibration.representative import CalibrationData, iter_batches
from calibration.sources import (
    DEFAULT_DATA_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    CalibrationWarning,
    ImageSource,
    decode_image,
    open_source,
)

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
