"""Malformed inputs never cost a run and never lie (issue 12, section 2 and parts of 3-4), and
benchmark's warm-up time floor (issue 15).

- a manifest.json of the wrong shape or types: ignored with one warning, the file measured
  (benchmark) or scored (evaluate) as a third-party model; `edgecnn.manifest` refuses it in
  one line naming the file;
- ONNX models with uint8 inputs: the scale and zero point come from the DequantizeLinear that
  reads the input; where the graph says nothing, one line says how to state the range;
- numeric options out of range: exit 2, one line naming the option; an unwritable --out is
  refused before anything is measured;
- evaluate: an export folder, the fallback notice once, "data ... not found";
- warm-up: at least --warmup runs and at least --warmup-secs seconds, recorded in the row.

The models are hand-built ONNX graphs whose right answers are known (no TensorFlow, fast).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

import edgecnn.cli.benchmark  # noqa: F401 (registers the commands, as edgecnn.cli does)
import edgecnn.cli.evaluate  # noqa: F401
from edgecnn.cli import app
from edgecnn.errors import EdgecnnError
from edgecnn.manifest import SCHEMA, Manifest, check_manifest, read_manifest_for, sha256_of

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
FAST = ["--runs", "3", "--min-secs", "0", "--warmup", "1", "--warmup-secs", "0"]

# Ten classes by brightness: pixel p is the real value r = p / 127.5 - 1 of `tf` preprocessing,
# and the class is the tenth of [-1, 1] the image's mean falls in (centres c_k).
CENTRES = -1 + (2 * np.arange(10) + 1) / 10


def _stderr_lines(result) -> list[str]:
    assert "Traceback" not in result.stdout + result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


# -- fixtures: graphs with known answers, and their data --------------------------------------------


def _classifier_graph(kind: str):
    """An 8x8x1 brightness classifier: logits_k = 2 c_k m - c_k^2, m the mean real value.

    kind "float": a float32 input of real values; "batch1": the same, but reshaped to a batch
    of 1 whatever its input's batch says; "qdq": a uint8 input read by a
    DequantizeLinear (scale 1/127.5, zero point 128), a QDQ graph's way; "cast": a uint8 input
    of raw 0-255 pixels cast to float in the graph, which states no scale anywhere."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.repeat((2 * CENTRES / 64)[None, :], 64, axis=0).astype(np.float32)
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(-(CENTRES**2).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1 if kind == "batch1" else -1, 64], np.int64), "shape"),
    ]
    nodes = []
    if kind in ("float", "batch1"):
        source, dtype = "x", TensorProto.FLOAT
    elif kind == "qdq":
        inits += [
            numpy_helper.from_array(np.array(1 / 127.5, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), "x_zero_point"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zero_point"], ["real"]))
        source, dtype = "real", TensorProto.UINT8
    else:
        inits += [
            numpy_helper.from_array(np.array(1 / 127.5, np.float32), "k"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ]
        nodes += [
            helper.make_node("Cast", ["x"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["pixels", "k"], ["scaled"]),
            helper.make_node("Sub", ["scaled", "one"], ["real"]),
        ]
        source, dtype = "real", TensorProto.UINT8
    nodes += [
        helper.make_node("Reshape", [source, "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"brightness_{kind}",
        [helper.make_tensor_value_info("x", dtype, ["N", 8, 8, 1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    import onnx

    root = tmp_path_factory.mktemp("graphs")
    paths = {}
    for kind in ("float", "batch1", "qdq", "cast"):
        folder = root / kind
        folder.mkdir()
        paths[kind] = folder / f"brightness-{kind}.onnx"
        onnx.save(_classifier_graph(kind), paths[kind])
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 10
    pixels = (CENTRES[labels] + 1) * 127.5
    x = np.clip(pixels[:, None, None] + rng.uniform(-8, 8, size=(120, 8, 8)), 0, 255).astype(np.uint8)
    data = root / "brightness.npz"
    np.savez(data, x=x, y=labels, class_names=np.array([f"c{k}" for k in range(10)]))
    paths["data"], paths["labels"], paths["x"] = data, labels, x
    return paths


def _manifest_for(path: Path, **extra) -> dict:
    return {
        "schema": SCHEMA,
        "model": "brightness",
        "artifact": path.name,
        "sha256": sha256_of(path),
        "format": "onnx",
        "quantization": "float32",
        "bytes": path.stat().st_size,
        "preprocess": {"mode": "tf", "input_shape": [8, 8, 1], "crop_fraction": 1.0, "color": "gray"},
        **extra,
    }


@pytest.fixture
def float_folder(graphs, tmp_path):
    """An export folder: the float model and a good manifest beside it."""
    folder = tmp_path / "brightness-onnx"
    folder.mkdir()
    model = folder / "brightness.onnx"
    model.write_bytes(graphs["float"].read_bytes())
    (folder / "manifest.json").write_text(json.dumps(_manifest_for(model)))
    return folder


# -- 1. manifests: one reader that checks shapes and types -----------------------------------------

BROKEN_MANIFESTS = {
    "a list": ("[1, 2]", "a list, not a JSON object"),
    "a number": ("42", "an integer, not a JSON object"),
    "a float": ("4.5", "a number, not a JSON object"),
    "a string": ('"edgecnn.manifest/1"', "a string, not a JSON object"),
    "null": ("null", "null, not a JSON object"),
    "no schema": (json.dumps({"artifact": "m.onnx", "sha256": "x"}), "no `schema`"),
    "schema abc": (
        json.dumps({"schema": "edgecnn.manifest/abc", "artifact": "m.onnx", "sha256": "x"}),
        "its version is not a number",
    ),
    "schema version ²": (
        json.dumps({"schema": "edgecnn.manifest/\u00b2", "artifact": "m.onnx", "sha256": "x"}),
        "its version is not a number",
    ),
    "schema a number": (json.dumps({"schema": 1, "artifact": "m.onnx", "sha256": "x"}), "not an edgecnn manifest"),
    "other tool": (json.dumps({"schema": "webapp.manifest/1", "name": "x"}), "not an edgecnn manifest"),
    "newer": (json.dumps({"schema": "edgecnn.manifest/9", "artifact": "m.onnx", "sha256": "x"}), "newer than"),
    "artifact a list": (
        json.dumps({"schema": SCHEMA, "artifact": ["m.onnx"], "sha256": "x"}),
        "`artifact` is a list, not a string",
    ),
    "options a string": (
        json.dumps({"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "options": "fast"}),
        "`options` is a string, not an object",
    ),
    "preprocess mode a number": (
        json.dumps({"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "preprocess": {"mode": 3}}),
        "`preprocess.mode` is an integer",
    ),
    "input shape of strings": (
        json.dumps({"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "inputs": [{"name": "x", "shape": ["8"]}]}),
        "`inputs[0].shape[0]` is a string, not an integer",
    ),
    "bytes true": (
        json.dumps({"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "bytes": True}),
        "`bytes` is true or false, not an integer",
    ),
    "unknown preprocessing": (
        json.dumps({"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "preprocess": {"mode": "yolo"}}),
        "`preprocess.mode` 'yolo' is not one of",
    ),
    "crop above 1": (
        json.dumps(
            {"schema": SCHEMA, "artifact": "m.onnx", "sha256": "x", "preprocess": {"mode": "tf", "crop_fraction": 5}}
        ),
        "`preprocess.crop_fraction` 5",
    ),
    "input size 0": (
        json.dumps(
            {
                "schema": SCHEMA,
                "artifact": "m.onnx",
                "sha256": "x",
                "preprocess": {"mode": "tf", "input_shape": [0, 8, 1]},
            }
        ),
        "has a size below 1",
    ),
    "scale NaN": (
        '{"schema": "edgecnn.manifest/1", "artifact": "m.onnx", "sha256": "x", '
        '"inputs": [{"name": "x", "scale": NaN}]}',
        "`inputs[0].scale` nan is not a finite number",
    ),
    "not JSON": ('{"schema": "edgecnn.manifest/1", ', "not readable JSON"),
    "not UTF-8": (b"\xff\xfe\x00".decode("latin-1"), "not readable JSON"),
}


@pytest.mark.parametrize("case", list(BROKEN_MANIFESTS))
def test_the_manifest_reader_refuses_in_one_line_naming_the_file(tmp_path, case):
    text, expected = BROKEN_MANIFESTS[case]
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(text.encode("latin-1") if case == "not UTF-8" else text.encode())
    with pytest.raises(EdgecnnError) as caught:
        read_manifest_for(model)
    message = str(caught.value)
    assert expected in message and str(manifest) in message and "\n" not in message


def test_a_typed_record_and_old_manifests_still_load(graphs, tmp_path):
    data = _manifest_for(
        graphs["float"],
        options={"alpha": 0.35, "input_size": 8, "classes": 10},
        inputs=[{"name": "x", "shape": [None, 8, 8, 1], "dtype": "float32", "scale": None, "zero_point": None}],
        optimization={"sparsity": None, "clusters": None, "qat": False},
        versions={"python": "3.11.7"},
    )
    record = Manifest.from_json(data, "manifest.json")
    assert (record.schema, record.model, record.sha256, record.version) == (SCHEMA, "brightness", data["sha256"], 1)
    assert record.data is data and check_manifest(data) is data


def test_manifests_written_by_export_pass_the_reader(exported_int8):
    for fmt in ("tflite", "onnx"):
        assert read_manifest_for(exported_int8[fmt]["path"])["sha256"] == exported_int8[fmt]["sha256"]


@pytest.mark.parametrize("case", ["a list", "a number", "schema abc", "options a string", "not JSON"])
def test_benchmark_ignores_a_broken_manifest_with_one_warning(float_folder, case):
    (float_folder / "manifest.json").write_text(BROKEN_MANIFESTS[case][0])
    model = float_folder / "brightness.onnx"
    other = float_folder.parent / "other.onnx"
    other.write_bytes(model.read_bytes())
    result = runner.invoke(app, ["benchmark", str(model), str(other), "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    (warning,) = _stderr_lines(result)
    assert warning.startswith(f"warning: {model}: manifest ignored: ") and "manifest.json" in warning
    assert "third-party" in warning
    rows = json.loads(result.stdout)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert rows[0]["model"] is None and rows[0]["variant"] is None  # measured as a third-party file
    assert any("manifest ignored" in w for w in rows[0]["warnings"]) and rows[1]["warnings"] == []


@pytest.mark.parametrize("case", ["a list", "a string", "schema abc", "preprocess mode a number", "newer"])
def test_evaluate_ignores_a_broken_manifest_with_one_warning(graphs, float_folder, case):
    (float_folder / "manifest.json").write_text(BROKEN_MANIFESTS[case][0])
    model = float_folder / "brightness.onnx"
    result = runner.invoke(app, ["evaluate", str(model), "--data", str(graphs["data"])])
    assert result.exit_code == 2  # nothing says how to preprocess, and the line says why
    line = one_error_line(result)
    assert "manifest beside brightness.onnx is ignored" in line and "--preprocess" in line
    result = runner.invoke(app, ["evaluate", str(model), "--data", str(graphs["data"]), "--preprocess", "tf", "--json"])
    assert result.exit_code == 0, result.stderr
    (warning,) = _stderr_lines(result)
    assert warning.startswith("warning: manifest ignored: ") and "third-party" in warning
    row = json.loads(result.stdout)
    assert row["top1"] == 1.0 and row["model"] is None and row["preprocess"]["source"] == "option"


_ODD_VALUES = ([], {}, "text", 3, True, None, [None], {"a": [1]}, -2.5)


def _field_paths(record, prefix=()):
    for key, value in record.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _field_paths(value, prefix + (key,))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            yield from _field_paths(value[0], prefix + (key, 0))


def test_any_manifest_field_of_any_type_is_ignored_or_used_never_a_crash(graphs, float_folder):
    """Every field (nested too) of a full manifest, replaced by values of every JSON type:
    benchmark's reading of it and evaluate either use the manifest, ignore it with a warning,
    or refuse in one line (EdgecnnError); no other exception."""
    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.harness import BenchmarkSettings, describe_artifact
    from edgecnn.harness.measure import make_feeds
    from edgecnn.runtime import open_session

    model = float_folder / "brightness.onnx"
    (info,) = open_session(model).inputs
    good = _manifest_for(
        model,
        options={"alpha": None, "input_size": 8, "classes": 10, "io": None, "calib": "x"},
        inputs=[{"name": "x", "shape": [None, 8, 8, 1], "dtype": "float32", "scale": None, "zero_point": None}],
        outputs=[{"name": "logits", "shape": [None, 10], "dtype": "float32"}],
        optimization={"sparsity": None, "clusters": None, "qat": False},
        calibration={"source": {"kind": "npz", "name": "other", "path": "/elsewhere"}},
        versions={"python": "3.11.7"},
        warnings=[],
        params=650,
        weights="file",
    )
    settings = BenchmarkSettings(data=str(graphs["data"]), samples=4)
    outcomes = set()
    for path in _field_paths(good):
        for value in _ODD_VALUES:
            data = json.loads(json.dumps(good))
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            (float_folder / "manifest.json").write_text(json.dumps(data))
            row, manifest = describe_artifact(model, settings)
            assert row["status"] == "ok", (path, value, row["error"])
            ignored = any("manifest ignored" in w for w in row["warnings"])
            try:
                make_feeds(
                    [info],
                    data=settings.data,
                    samples=4,
                    manifest_inputs=(manifest or {}).get("inputs"),
                    preprocess=(manifest or {}).get("preprocess") or {"mode": "tf"},
                )
                evaluated = evaluate_artifact(model, graphs["data"], limit=8, preprocess="auto" if manifest else "tf")
                outcomes.add("ignored" if ignored else "used")
                assert evaluated["n"] == 8
            except EdgecnnError as exc:
                assert "\n" not in str(exc)
                outcomes.add("refused")
    assert {"ignored", "used"} <= outcomes


# -- 3. ONNX integer inputs: the graph's scale, or a line saying how to state it -------------------


def test_the_graph_gives_a_uint8_input_its_scale(graphs):
    from edgecnn.runtime import open_session

    (info,) = open_session(graphs["qdq"]).inputs
    assert info.dtype == "uint8" and info.scale == pytest.approx(1 / 127.5) and info.zero_point == 128
    (raw,) = open_session(graphs["cast"]).inputs
    assert raw.dtype == "uint8" and raw.scale is None


def test_scales_from_constant_nodes_default_zero_points_and_quantized_outputs(tmp_path):
    """The scale as a Constant node, no zero point (0), and a uint8 output written by a
    QuantizeLinear: the output is dequantized with its scale (the answer, 0.5, comes back)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runtime import open_session, run_float

    nodes = [
        helper.make_node("Constant", [], ["s_in"], value=numpy_helper.from_array(np.array(0.25, np.float32))),
        helper.make_node("DequantizeLinear", ["x", "s_in"], ["real"]),
        helper.make_node("ReduceMean", ["real"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("QuantizeLinear", ["mean", "s_out", "z_out"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constants",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1])],
        initializer=[
            numpy_helper.from_array(np.array(0.01, np.float32), "s_out"),
            numpy_helper.from_array(np.array(7, np.uint8), "z_out"),
        ],
    )
    path = tmp_path / "constants.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    session = open_session(path)
    (inp,), (out,) = session.inputs, session.outputs
    assert (inp.scale, inp.zero_point) == (0.25, 0) and (out.scale, out.zero_point) == (pytest.approx(0.01), 7)
    (y,) = run_float(session, np.array([[0.0, 0.5, 0.75, 0.75]], np.float32))
    assert y.tolist() == pytest.approx([0.5])


def test_evaluate_quantizes_with_the_scale_of_the_dequantize_linear(graphs):
    from edgecnn.evaluate import evaluate_artifact

    row = evaluate_artifact(graphs["qdq"], graphs["data"], preprocess="tf")
    assert row["n"] == 120 and row["top1"] == 1.0  # a cast of [-1, 1] to uint8 scores about 0.1
    assert row["input"]["scale"] == pytest.approx(1 / 127.5) and row["input"]["zero_point"] == 128
    assert row["input_quantization"] == "model"
    float_row = evaluate_artifact(graphs["float"], graphs["data"], preprocess="tf")
    assert float_row["top1"] == 1.0 and float_row["input_quantization"] is None


def test_a_uint8_input_the_graph_says_nothing_about_is_refused(graphs):
    result = runner.invoke(app, ["evaluate", str(graphs["cast"]), "--data", str(graphs["data"]), "--preprocess", "tf"])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "input `x` of brightness-cast.onnx is uint8" in line and "--input-scale" in line
    assert "--preprocess raw" in line


@pytest.mark.parametrize(
    "args, source",
    [
        (["--preprocess", "raw"], "raw"),
        (["--preprocess", "tf", "--input-scale", str(1 / 127.5), "--input-zero-point", "128"], "option"),
    ],
)
def test_stating_the_range_of_a_raw_uint8_input(graphs, args, source):
    result = runner.invoke(app, ["evaluate", str(graphs["cast"]), "--data", str(graphs["data"]), "--json", *args])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["top1"] == 1.0 and row["input_quantization"] == source


def test_benchmark_data_on_uint8_inputs(graphs):
    data = ["--data", str(graphs["data"]), "--preprocess", "tf", "--samples", "8"]
    result = runner.invoke(app, ["benchmark", str(graphs["qdq"]), str(graphs["cast"]), "--json", *data, *FAST])
    assert result.exit_code == 1
    ok, failed = json.loads(result.stdout)
    assert ok["status"] == "ok" and ok["inputs"][0]["dtype"] == "uint8"
    assert failed["status"] == "failed" and "--input-scale" in failed["error"]
    (line,) = _stderr_lines(result)
    assert line.startswith(f"error: {graphs['cast']}: ")
    result = runner.invoke(
        app,
        [
            "benchmark",
            str(graphs["cast"]),
            "--json",
            *data,
            *FAST,
            "--input-scale",
            str(1 / 127.5),
            "--input-zero-point",
            "128",
        ],
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["settings"]["input_scale"] == pytest.approx(1 / 127.5) and row["settings"]["input_zero_point"] == 128


def test_input_quantization_rules():
    from edgecnn.errors import BadArgument
    from edgecnn.runtime import TensorInfo, input_quantization, quantize

    u8 = TensorInfo("x", (1, 8, 8, 1), "uint8")
    assert input_quantization(u8, preprocess="raw").scale == 1.0
    with pytest.raises(EdgecnnError):
        input_quantization(TensorInfo("x", (1, 8, 8, 1), "int8"), preprocess="raw")  # 0-255 does not fit
    stated = input_quantization(u8, scale=0.5, zero_point=10)
    assert quantize(np.array([0.0, 1.0, 200.0]), stated).tolist() == [10, 12, 255]
    for kwargs in (
        dict(scale=0.0),
        dict(scale=math.inf),
        dict(scale=math.nan),
        dict(scale=1.0, zero_point=256),
        dict(zero_point=3),
    ):
        with pytest.raises(BadArgument):
            input_quantization(u8, **kwargs)
    with pytest.raises(BadArgument):
        input_quantization(TensorInfo("x", (1, 8, 8, 1), "float32"), scale=0.5)
    assert input_quantization(TensorInfo("x", (1,), "float32")).scale is None


# -- 4. numeric options and --out, before anything is measured -------------------------------------


@pytest.mark.parametrize(
    "args, option",
    [
        (["--max-secs", "inf"], "--max-secs"),
        (["--max-secs", "nan"], "--max-secs"),
        (["--max-secs", "-1"], "--max-secs"),
        (["--max-secs", "0"], "--max-secs"),
        (["--min-secs", "nan"], "--min-secs"),
        (["--min-secs", "-0.5"], "--min-secs"),
        (["--min-secs", "inf"], "--min-secs"),
        (["--warmup-secs", "-1"], "--warmup-secs"),
        (["--warmup-secs", "inf"], "--warmup-secs"),
        (["--warmup-secs", "nan"], "--warmup-secs"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**40)], "--seed"),
        (["--threads", "0"], "--threads"),
        (["--threads", "-4"], "--threads"),
        (["--threads", "100000"], "--threads"),
        (["--batch", "0"], "--batch"),
        (["--batch", str(2**40)], "--batch"),
        (["--runs", "0"], "--runs"),
        (["--warmup", "-1"], "--warmup"),
        (["--samples", "0"], "--samples"),
        (["--remote-port", "0", "--remote", "pi@host"], "--remote-port"),
        (["--input-scale", "0", "--data", "default"], "--input-scale"),
        (["--input-scale", "nan", "--data", "default"], "--input-scale"),
        (["--input-zero-point", "3", "--data", "default"], "--input-zero-point"),
        (["--input-scale", "0.5"], "--input-scale"),
    ],
)
def test_benchmark_numeric_options_have_ranges(monkeypatch, args, option):
    called = []
    monkeypatch.setattr("edgecnn.harness.benchmark_many", lambda *a, **k: called.append(a) or [])
    result = runner.invoke(app, ["benchmark", "m.tflite", *args])
    assert result.exit_code == 2, result.stderr
    assert option in one_error_line(result) and called == []


@pytest.mark.parametrize(
    "args, option",
    [
        (["--limit", "0"], "--limit"),
        (["--limit", "-3"], "--limit"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", str(2**40)], "--batch-size"),
        (["--threads", "0"], "--threads"),
        (["--threads", "100000"], "--threads"),
        (["--crop-fraction", "nan"], "crop"),
        (["--crop-fraction", "0"], "crop"),
        (["--input-zero-point", "3"], "--input-zero-point"),
        (["--input-scale", "-1"], "--input-scale"),
        (["--input-scale", "inf"], "--input-scale"),
    ],
)
def test_evaluate_numeric_options_have_ranges(graphs, args, option):
    result = runner.invoke(
        app, ["evaluate", str(graphs["cast"]), "--data", str(graphs["data"]), "--preprocess", "tf", *args]
    )
    assert result.exit_code == 2, result.stderr
    assert option in one_error_line(result)


def _bad_outs(tmp_path):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    return {
        "a folder": (tmp_path / "a-folder", "it is a folder"),
        "under a file": (tmp_path / "a-file" / "rows.jsonl", "is not a folder"),
    }


@pytest.mark.parametrize("case", ["a folder", "under a file"])
def test_an_unwritable_out_is_refused_before_measuring(monkeypatch, tmp_path, case):
    out, expected = _bad_outs(tmp_path)[case]
    called = []
    monkeypatch.setattr("edgecnn.harness.benchmark_many", lambda *a, **k: called.append(a) or [])
    monkeypatch.setattr("edgecnn.evaluate.evaluate_artifact", lambda *a, **k: called.append(a) or {})
    for command in (["benchmark", "m.tflite"], ["evaluate", "m.tflite", "--data", "default"]):
        result = runner.invoke(app, [*command, "--out", str(out)])
        assert result.exit_code == 1, result.stderr
        line = one_error_line(result)
        assert f"cannot write results to {out}" in line and expected in line
    assert called == []


# -- 5. evaluate: export folders, the fallback notice once, "data ... not found" -------------------


def test_evaluate_accepts_an_export_folder(graphs, float_folder):
    result = runner.invoke(app, ["evaluate", str(float_folder), "--data", str(graphs["data"]), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["artifact"] == str(float_folder / "brightness.onnx") and row["model"] == "brightness"
    assert row["preprocess"]["source"] == "manifest" and row["top1"] == 1.0


def test_a_folder_without_an_artifact_is_one_line(graphs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["evaluate", str(empty), "--data", str(graphs["data"])], ["benchmark", str(empty), *FAST]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert f"{empty} is a folder without a manifest.json" in one_error_line(result)


def test_missing_data_says_data(graphs, tmp_path):
    result = runner.invoke(
        app, ["evaluate", str(graphs["float"]), "--data", str(tmp_path / "nothing"), "--preprocess", "tf"]
    )
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"data `{tmp_path / 'nothing'}` not found" in line and "calibration" not in line


def test_the_fallback_notice_prints_once(graphs):
    """A graph that declares a dynamic batch but reshapes to batch 1: ONNX Runtime refuses
    batches of 8, and 15 batches give one notice, not 15."""
    from edgecnn.evaluate import Progress, evaluate_artifact

    warnings = []

    class Collect(Progress):
        def warn(self, message):
            warnings.append(message)

    row = evaluate_artifact(graphs["batch1"], graphs["data"], preprocess="tf", batch_size=8, progress=Collect())
    assert row["n"] == 120 and row["top1"] == 1.0 and row["batch_size"] == 1
    assert len([w for w in warnings if "one image at a time" in w]) == 1
    assert len([w for w in row["warnings"] if "one image at a time" in w]) == 1


# -- 6. warm-up: at least --warmup runs and at least --warmup-secs seconds -------------------------


class _SlowSession:
    """Each invoke takes 0.1 s of a fake clock."""

    def __init__(self, clock):
        self.clock = clock

    def set_inputs(self, arrays):
        pass

    def invoke(self):
        self.clock.now += 0.1

    def get_outputs(self):
        return []


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    "warmup, warmup_secs, max_secs, runs, stopped",
    [
        (1, 0.5, 100, 5, "runs"),  # the time floor dominates: 5 runs of 0.1 s
        (8, 0.5, 100, 8, "runs"),  # the count dominates
        (0, 0.0, 100, 0, None),  # no warm-up at all
        (1, 50.0, 0.3, 3, "max_secs"),  # capped by --max-secs, as benchmark_model caps it
    ],
)
def test_warmup_runs_until_both_floors(warmup, warmup_secs, max_secs, runs, stopped):
    from edgecnn.harness.measure import time_invokes

    clock = _Clock()
    timing = time_invokes(
        _SlowSession(clock),
        [[np.zeros(1)]],
        warmup=warmup,
        warmup_secs=warmup_secs,
        runs=2,
        min_secs=0,
        max_secs=max_secs,
        clock=clock,
    )
    assert len(timing.warmup_s) == runs and timing.warmup_stopped_by == stopped
    assert len(timing.times_s) >= 1


def test_the_row_records_the_warmup(graphs):
    result = runner.invoke(
        app,
        [
            "benchmark",
            str(graphs["float"]),
            "--json",
            "--runs",
            "2",
            "--min-secs",
            "0",
            "--warmup",
            "1",
            "--warmup-secs",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["settings"]["warmup"] == 1 and row["settings"]["warmup_secs"] == 0.2
    assert row["warmup_runs"] > 1  # a model of microseconds needs many runs to fill 0.2 s
    from edgecnn.harness import BenchmarkSettings

    assert BenchmarkSettings().warmup_secs == 0.5


def test_a_batch_too_large_for_memory_is_refused_before_arrays_are_made():
    from edgecnn.harness.measure import check_input_memory
    from edgecnn.runtime import TensorInfo

    info = TensorInfo("x", (-1, 224, 224, 3), "uint8")
    check_input_memory([info], [(8, 224, 224, 3)], 8, available=2**30)
    with pytest.raises(EdgecnnError, match=r"--batch 4096: the inputs alone need 2\.3 GiB, more than the 1\.0 GiB"):
        check_input_memory([info], [(4096, 224, 224, 3)], 4096, available=2**30)
