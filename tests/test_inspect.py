"""`edgecnn inspect`: one tiny model per case the issue names, the CLI's bad input, TensorFlow-free.

Cases: a float op left in an int8 TFLite graph (and off XNNPACK), a dynamic batch (our own export)
against a fixed one, an unfused Q/DQ pair in ONNX read after ONNX Runtime's optimization, a
uint8-input third-party QOperator graph without a manifest; numerics on the trained tiny model.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.host import cpu_features, describe_host
from edgecnn.inspect import inspect_artifact
from edgecnn.inspect.findings import findings

runner = CliRunner()


def _kinds(report):
    return [f["kind"] for f in report["findings"]]


# -- hand-made files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float_island(tmp_path_factory):
    """int8 conv -> CUMSUM (no int8 kernel, not taken by XNNPACK) -> int8 conv: the converter's
    float fallback leaves CUMSUM in float between DEQUANTIZE and QUANTIZE."""
    import tensorflow as tf

    from edgecnn._tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    h = keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1), name="running")(h)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(h))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.normal(size=(1, 8, 8, 3)).astype(np.float32)] for _ in range(8))
    path = tmp_path_factory.mktemp("island") / "island.tflite"
    path.write_bytes(converter.convert())
    return path


def _save(graph, path, opset=17, ms=False):
    import onnx
    from onnx import helper

    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=8), path)
    return path


@pytest.fixture(scope="module")
def onnx_cases(tmp_path_factory):
    """An unfused QDQ pair (DQ -> Sin -> Q, no int8 Sin kernel) after a fusable QDQ Conv, batch 1;
    and a third-party-style QOperator graph with uint8 input (QLinearConv), no manifest."""
    from onnx import TensorProto, helper, numpy_helper

    root = tmp_path_factory.mktemp("onnx_cases")
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    init = [
        const("s", np.float32(0.05)),
        const("z", np.int8(0)),
        const("w", w),
        const("ws", np.full(4, 0.01, np.float32)),
        const("wz", np.zeros(4, np.int8)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
        helper.make_node("Sin", ["cd"], ["sn"], name="sine"),
        helper.make_node("QuantizeLinear", ["sn", "s", "z"], ["sq"]),
        helper.make_node("DequantizeLinear", ["sq", "s", "z"], ["y"]),
    ]
    qdq = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=init,
    )
    qdq_path = _save(qdq, root / "unfused.onnx")

    init = [
        const("xs", np.float32(1 / 255)),
        const("xz", np.uint8(0)),
        const("w", w),
        const("ws", np.float32(0.01)),
        const("wz", np.int8(0)),
        const("ys", np.float32(0.1)),
        const("yz", np.uint8(128)),
    ]
    nodes = [
        helper.make_node(
            "QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["yq"], pads=[1, 1, 1, 1], name="qconv"
        ),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ]
    third = helper.make_graph(
        nodes,
        "third",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=init,
    )
    third_path = _save(third, root / "uint8_input.onnx")
    return {"unfused": qdq_path, "uint8": third_path}


# -- the cases ------------------------------------------------------------------------------------


def test_float_op_left_in_an_int8_tflite_graph(float_island):
    report = inspect_artifact(float_island)
    graph, runtime = report["graph"], report["runtime"]
    assert graph["quantized"]
    assert [op["op_type"] for op in graph["float_ops"]] == ["CUMSUM"]
    assert graph["conversions"] == {"QUANTIZE": 2, "DEQUANTIZE": 2}
    assert {(r["op_type"], r["compute_dtype"]) for r in graph["ops_by_type"]} >= {
        ("CONV_2D", "int8"),
        ("CUMSUM", "float32"),
    }
    # XNNPACK takes both convs and the Q/DQ ops, in two partitions around CUMSUM
    assert runtime["delegate"] == "XNNPACK" and runtime["partitions"] == 2
    assert runtime["default_kernels"] == [{"op_type": "CUMSUM", "count": 1}]
    kinds = _kinds(report)
    # A CPU without int8 dot-product instructions adds its finding (AVX2-only x86): as the CPU says.
    assert ("no_int8_dot" in kinds) == (not report["hardware"]["int8_dot_product"])
    assert [kind for kind in kinds if kind != "no_int8_dot"][:2] == ["float_ops", "not_delegated"]
    assert "1 ops (CUMSUM) compute in float inside this int8 graph" in report["findings"][0]["text"]
    assert graph["macs"] == 8 * 8 * 4 * (3 * 3 * 3) + 8 * 8 * 4 * (3 * 3 * 4)  # conv_a + conv_b, batch 1


def test_dynamic_batch_of_our_export_and_a_fixed_one(trained_tiny, onnx_cases):
    ours = inspect_artifact(trained_tiny["int8-tflite"]["path"])
    assert {"tensor": ours["graph"]["inputs"][0]["name"], "role": "input", "axis": 0, "dim": None} in ours["graph"][
        "dynamic_dims"
    ]
    assert "dynamic" in _kinds(ours)
    assert ours["graph"]["inputs"][0]["dtype"] == "int8" and ours["graph"]["inputs"][0]["scale"] > 0
    # params by class: the int8 weights of conv1 (16x3x3x1), dw (1x3x3x16), pw (32x1x1x16), dense (10x32)
    weights = [r for r in ours["graph"]["params_by_class"] if r["class"] == "weights"]
    assert weights == [
        {
            "class": "weights",
            "dtype": "int8",
            "tensors": 4,
            "params": 144 + 144 + 512 + 320,
            "bytes": 1120,
            "per_channel": 4,
        }
    ]
    fixed = inspect_artifact(onnx_cases["unfused"])
    assert fixed["graph"]["dynamic_dims"] == [] and "dynamic" not in _kinds(fixed)


def test_unfused_qdq_pair_in_onnx_after_ort_optimization(onnx_cases, trained_tiny):
    report = inspect_artifact(onnx_cases["unfused"])
    runtime = report["runtime"]
    assert "QLinearConv" in runtime["fused"]  # the Conv's pair fused
    assert [op["op_type"] for op in runtime["unfused"]] == ["Sin"]  # the Sin's did not
    assert runtime["optimized_conversions"].get("DequantizeLinear", 0) >= 1
    assert report["findings"][0]["kind"] == "unfused_qdq"
    assert report["findings"][0]["text"].startswith("1 ops (Sin) still run in float between DequantizeLinear")
    assert report["graph"]["macs"] == 8 * 8 * 4 * 3 * 3 * 3
    # our own int8 export of the trained model fuses everything
    ours = inspect_artifact(trained_tiny["int8-onnx"]["path"])
    assert ours["runtime"]["unfused"] == [] and ours["graph"]["quantized"]
    assert "unfused_qdq" not in _kinds(ours)


def test_uint8_input_third_party_graph(onnx_cases):
    report = inspect_artifact(onnx_cases["uint8"], threads=1)
    assert report["artifact"]["manifest"] is False
    (inp,) = report["graph"]["inputs"]
    assert inp["dtype"] == "uint8" and inp["scale"] == pytest.approx(1 / 255) and inp["zero_point"] == 0
    assert report["graph"]["quantized"]
    assert ("QLinearConv", "uint8") in {(r["op_type"], r["compute_dtype"]) for r in report["graph"]["ops_by_type"]}
    assert report["graph"]["macs"] == 8 * 8 * 4 * 3 * 3 * 3
    assert [r for r in report["graph"]["params_by_class"] if r["class"] == "weights"][0]["params"] == 4 * 27
    assert set(report["runtime"]["providers"]) == {"CPU"}


def test_profile_onnx_per_op_and_litert_says_plainly(trained_tiny):
    report = inspect_artifact(trained_tiny["int8-onnx"]["path"], threads=1, profile=True)
    prof = report["profile"]
    assert prof["available"] and prof["runs"] == 50
    assert {r["op_type"] for r in prof["by_op_type"]} >= {"QLinearConv"}
    assert sum(r["share"] for r in prof["by_op_type"]) == pytest.approx(1.0, abs=0.01)
    assert prof["harness"]["p50_ms"] > 0 and prof["total_over_p50"] > 0
    assert {n["provider"] for n in prof["nodes"]} == {"CPU"}
    tflite = inspect_artifact(trained_tiny["int8-tflite"]["path"], profile=True)["profile"]
    assert tflite["available"] is False and "no per-op profiler" in tflite["note"]


def test_numerics_through_the_cli(trained_tiny, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "inspect",
            trained_tiny["int8-tflite"]["path"],
            "--data",
            "tests/data/fashion-mnist-test-200.npz",
            "--reference",
            trained_tiny["float32-tflite"]["path"],
            "--samples",
            "40",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    numerics = json.loads(out.read_text())["numerics"]
    assert numerics["images"] == 40 and numerics["preprocess"] == "unit"
    assert [layer["op_type"] for layer in numerics["layers"]][-1] == "FULLY_CONNECTED"
    assert numerics["top1_agreement"] > 0.8 and numerics["top1"]["reference"] > 0.4
    result = runner.invoke(
        app,
        [
            "inspect",
            trained_tiny["int8-onnx"]["path"],
            "--data",
            "tests/data/fashion-mnist-test-200.npz",
            "--reference",
            trained_tiny["float32-onnx"]["path"],
            "--samples",
            "40",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    kernels = json.loads(result.stdout)["numerics"]["kernels"]  # fused kernels vs the QDQ arithmetic
    assert kernels["images"] == 40 and kernels["top1_agreement"] >= 0.9 and kernels["max_abs_diff"] >= 0
    for fmt, marker in (("md", "## 8. Numerics per layer"), ("html", "<h2>8. Numerics per layer")):
        result = runner.invoke(
            app,
            [
                "inspect",
                trained_tiny["int8-onnx"]["path"],
                "--data",
                "tests/data/fashion-mnist-test-200.npz",
                "--reference",
                trained_tiny["float32-onnx"]["path"],
                "--samples",
                "8",
                "--format",
                fmt,
            ],
        )
        assert result.exit_code == 0, result.output
        assert marker in result.stdout


def test_hardware_features_and_their_finding():
    arm = cpu_features(
        "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimdhp asimddp\n"
        "CPU implementer\t: 0x41\nCPU part\t: 0xd0b\n",
        arch="aarch64",
    )
    assert arm["int8_dot_product"] and arm["core_types"] == ["Cortex-A76"] and arm["features"]["asimdhp"]
    a72 = cpu_features(
        "Features\t: fp asimd evtstrm crc32\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n", arch="aarch64"
    )
    assert not a72["int8_dot_product"] and a72["core_types"] == ["Cortex-A72"]
    avx2 = cpu_features("flags\t\t: fpu sse sse2 avx avx2 fma\n", arch="x86_64")
    assert not avx2["int8_dot_product"] and avx2["int8_path"] == "AVX2 (no VNNI)"
    assert cpu_features("flags\t\t: avx2 avx512f avx512_vnni amx_int8\n", arch="x86_64")["int8_path"] == "AMX-INT8"
    assert "cpu_features" in describe_host()  # so every benchmark and evaluate row records them
    report = {
        "artifact": {"format": "tflite"},
        "hardware": avx2,
        "profile": None,
        "numerics": None,
        "runtime": {"default_kernel_ops": 0, "delegate": "XNNPACK", "partitions": 1},
        "graph": {
            "macs": 1,
            "float_ops": [],
            "quantized": True,
            "conversions": {},
            "ops": 3,
            "ops_by_type": [],
            "dynamic_dims": [],
            "weights": {"int8": 0, "int8_within_7_bits": 0},
        },
    }
    (first,) = [f for f in findings(report) if f["kind"] == "no_int8_dot"]
    assert first["rank"] == 1 and "expect little or no int8 speed-up" in first["text"]


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input_is_one_line(trained_tiny, onnx_cases, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07\x12garbage that is no protobuf \xff\xff\xff")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases = [
        (["inspect", str(junk)], 1, "not a TFLite model"),
        (["inspect", str(broken)], 1, "broken.onnx"),
        (["inspect", str(text)], 2, "inspect reads .tflite and .onnx"),
        (["inspect", str(tmp_path / "missing.onnx")], 1, "no such file"),
        (
            ["inspect", trained_tiny["int8-onnx"]["path"], "--data", "tests/data/fashion-mnist-test-200.npz"],
            2,
            "give --reference",
        ),
        (
            [
                "inspect",
                trained_tiny["int8-onnx"]["path"],
                "--data",
                "tests/data/fashion-mnist-test-200.npz",
                "--reference",
                str(onnx_cases["unfused"]),
            ],
            2,
            "--reference unfused.onnx takes input",
        ),
        (
            [
                "inspect",
                trained_tiny["int8-onnx"]["path"],
                "--data",
                "tests/data/fashion-mnist-test-200.npz",
                "--reference",
                trained_tiny["float32-tflite"]["path"],
            ],
            2,
            "not the same format",
        ),
        (["inspect", trained_tiny["int8-onnx"]["path"], "--format", "pdf"], 2, "--format must be one of"),
        (["inspect", trained_tiny["int8-onnx"]["path"], "--threads", "0"], 2, "--threads"),
    ]
    for args, code, words in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.output)
        assert words in one_error_line(result), (args, result.stderr)


def test_inspect_never_imports_tensorflow(trained_tiny):
    script = f"""
import sys
from edgecnn.inspect import inspect_artifact
inspect_artifact({trained_tiny["int8-tflite"]["path"]!r}, profile=True, data="tests/data/fashion-mnist-test-200.npz",
                 reference={trained_tiny["float32-tflite"]["path"]!r}, samples=4)
inspect_artifact({trained_tiny["int8-onnx"]["path"]!r}, data="tests/data/fashion-mnist-test-200.npz",
                 reference={trained_tiny["float32-onnx"]["path"]!r}, samples=4)
import edgecnn.cli.inspect
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tf2onnx"))
print("HEAVY", heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY []" in result.stdout


def test_dynamic_range_tflite_is_weight_only_not_float(tmp_path):
    """int8 weights, float activations (Optimize.DEFAULT without calibration data): not 'no integer op'."""
    import tensorflow as tf

    from edgecnn._tf import import_keras

    keras = import_keras()
    inputs = keras.layers.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(64)(keras.layers.Flatten()(inputs)))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(converter.convert())
    report = inspect_artifact(path)
    assert not report["graph"]["quantized"] and report["graph"]["weights"]["int8"] == 1
    assert "weight_only" in _kinds(report) and "float_graph" not in _kinds(report)


def test_dynamic_spatial_dims_census_without_a_run(tmp_path):
    """A third-party graph with named dynamic dimensions everywhere: no input can be made to run it,
    so the census stands, the runtime says why nothing ran, and --profile says so too."""
    from onnx import TensorProto, helper

    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, dims),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, dims),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    path = _save(graph, tmp_path / "two_inputs.onnx")
    report = inspect_artifact(path, profile=True)
    assert len(report["graph"]["dynamic_dims"]) == 9 and report["graph"]["ops"] == 2
    assert report["runtime"]["note"].startswith("not run: input `a` has dynamic dimensions")
    assert report["profile"]["available"] is False
    assert {"dynamic", "no_profiler", "float_graph"} <= set(_kinds(report))
