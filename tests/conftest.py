"""Shared test settings and the expensive fixtures (conversions), built once per session."""

import os

# Tests never download: `--weights auto` then means "cached ImageNet weights, else random".
os.environ["EDGECNN_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def exported_int8(tmp_path_factory):
    """A tiny MobileNetV2 exported as int8 TFLite and ONNX with the default calibration set.

    One int8 conversion costs 25-70 s on CI's 2 cores: every test that needs an int8
    artifact shares this one.
    """
    from edgecnn.export import ExportRequest, export

    out = tmp_path_factory.mktemp("artifacts")
    request = ExportRequest(model="mobilenet_v2", quantization="int8", formats=("tflite", "onnx"),
                            input_size=32, alpha=0.35, classes=10, weights="none",
                            calib_samples=16, out=out)
    manifests = export(request)
    return {"out": out, "request": request, "tflite": manifests[0], "onnx": manifests[1]}
