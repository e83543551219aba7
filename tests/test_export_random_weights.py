"""`--weights auto` offline: random weights whose outputs vary (edgecnn.training.random_weights),
so that every variant converts to a file its runtime loads and parity measures something."""

import pytest

from edgecnn.export import ExportRequest, export


def _tiny_mobilenet(tmp_path, quantization, **kwargs):
    return ExportRequest(
        model="mobilenet_v2",
        input_size=32,
        alpha=0.35,
        quantization=quantization,
        formats=("tflite",),
        out=tmp_path,
        calib_samples=8,
        parity_samples=8,
        **kwargs,
    )


@pytest.mark.slow
def test_offline_random_weights_give_a_loadable_int16x8_file_and_informative_parity(tmp_path):
    """Keras's own initializers make MobileNetV2's activations vanish (near 1e-10 at its end):
    int16 ranges that small overflow LiteRT's int32 activation bounds and the int16x8 file does
    not load ("no_integer_overflow_from_quantization", a DEPTHWISE_CONV_2D). `--weights auto`
    without ImageNet weights (conftest: EDGECNN_OFFLINE) sets BatchNorm statistics and the
    classifier's scale on shipped photos: the file loads and its parity is informative."""
    (manifest,) = export(_tiny_mobilenet(tmp_path, "int16x8"))
    assert manifest["weights"] == "random" and manifest["options"]["weights"] == "auto"
    parity = manifest["parity"]
    assert parity["informative"] is True and parity["reference_top1_classes"] >= 2
    # (how closely a random network's quantized file follows it says little: at 32x32 int16x8
    # agreed on 4 of 8 images, int8 on 2; trained weights are where the numbers are checked)
    record = manifest["random_weights"]
    assert record["batchnorm_layers"] > 10 and record["images"] == 16
    assert record["classifier"] == "predictions" and record["classifier_scale"] > 1


@pytest.mark.slow
def test_random_weights_do_not_depend_on_the_variant_or_the_calibration(tmp_path):
    """The statistics come from the same shipped photos whatever --calib is: a float32 export and
    an int8 one calibrated on noise start from the same Keras model (the classifier's scale,
    measured on the features of those photos, is the same to the last bit)."""
    (float32,) = export(_tiny_mobilenet(tmp_path / "f", "float32"))
    (int8,) = export(_tiny_mobilenet(tmp_path / "i", "int8", calib="random"))
    assert float32["random_weights"] == int8["random_weights"]
    assert float32["random_weights"]["classifier_scale"] > 1


@pytest.mark.slow
def test_weights_none_keeps_keras_initializers(tmp_path):
    """`--weights none` is Keras's initializers as they are: no statistics set, no record."""
    (manifest,) = export(_tiny_mobilenet(tmp_path, "float32", weights="none"))
    assert manifest["weights"] == "random" and manifest.get("random_weights") is None
    assert manifest["parity"]["informative"] is False


@pytest.mark.slow
def test_int16x8_of_vanishing_activations_is_one_line_saying_what_to_do(tmp_path):
    """With Keras's initializers (`--weights none`) LiteRT refuses MobileNetV2's int16x8 file at
    load: exit 1, one line naming the cause and what to export instead, nothing written."""
    from _helpers import one_error_line
    from typer.testing import CliRunner

    from edgecnn.cli import app

    result = CliRunner().invoke(
        app,
        [
            "export",
            "mobilenet_v2",
            "--input-size",
            "32",
            "--alpha",
            "0.35",
            "--int16x8",
            "--weights",
            "none",
            "--calib-samples",
            "8",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "no_integer_overflow_from_quantization" in line and "too narrow to quantize" in line
    assert "--weights PATH" in line and "--weights auto" in line
    assert not (tmp_path / "out").exists()
