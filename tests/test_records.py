"""edgecnn.records: the typed, versioned records (round trips, each refusal, old files load),
and the readers that go through them (manifest, sidecar, benchmark rows, compare's join)."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.errors import EdgecnnError
from edgecnn.records import (
    BENCHMARK_SCHEMA,
    EVALUATE_SCHEMA,
    MANIFEST_SCHEMA,
    SIDECAR_SCHEMA,
    BenchmarkRow,
    EvaluateRow,
    Manifest,
    Optimization,
    Sidecar,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = sorted((REPO / "benchmarks" / "results").glob("**/*.jsonl"))
RECORDS = {BENCHMARK_SCHEMA: BenchmarkRow, EVALUATE_SCHEMA: EvaluateRow, MANIFEST_SCHEMA: Manifest}


def _committed_rows():
    """Every benchmark row, evaluate row and manifest in the committed results, by line."""
    rows = []
    for path in RESULTS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            data = json.loads(line) if line.strip() else None
            if isinstance(data, dict) and data.get("schema") in RECORDS:
                rows.append(pytest.param(data, id=f"{path.parent.name}/{path.name}:{number}"))
    return rows


COMMITTED = _committed_rows()


def _manifest(**changes):
    """A manifest with every key `edgecnn export` writes (values of a small int8 TFLite)."""
    data = {
        "schema": MANIFEST_SCHEMA,
        "model": "lenet5",
        "source": "zoo",
        "options": {"input_size": 32, "alpha": None, "classes": 10, "io": "float32", "calib": "default"},
        "format": "tflite",
        "quantization": "int8",
        "optimization": {"sparsity": 0.5, "clusters": 16, "qat": True, "preserve": "clusters"},
        "qat": {"epochs": 1},
        "weights": "random",
        "params": 61706,
        "artifact": "lenet5-int8.tflite",
        "bytes": 70000,
        "float32_weight_bytes": 246824,
        "sha256": "ab" * 32,
        "inputs": [{"name": "x", "shape": [1, 32, 32, 1], "dtype": "float32", "scale": None, "zero_point": None}],
        "outputs": [{"name": "y", "shape": [1, 10], "dtype": "int8", "scale": 0.00390625, "zero_point": -128}],
        "preprocess": {"mode": "unit", "input_shape": [32, 32, 1], "crop_fraction": 1.0, "color": "gray"},
        "labels": None,
        "calibration": {"source": {"kind": "default"}, "samples": 16},
        "calibration_method": "minmax",
        "quantization_settings": {},
        "parity": {"informative": True},
        "export_seconds": 3.2,
        "export_stages": {},
        "created": "2026-12-01T00:00:00+00:00",
        "versions": {"python": "3.11.7", "edgecnn": "0.1.0"},
        "warnings": ["weights: random"],
    }
    data.update(changes)
    return data


def _sidecar(**changes):
    data = {
        "schema": SIDECAR_SCHEMA,
        "model": "lenet5",
        "preprocess": "unit",
        "input_shape": [32, 32, 1],
        "class_names": ["a", "b"],
        "num_classes": 2,
        "params": 61706,
        "parent": "lenet5",
        "optimization": {"sparsity": 0.5, "clusters": None, "qat": False},
        "epochs": 3,
    }
    data.update(changes)
    return data


def _evaluate_row(**changes):
    data = {
        "schema": EVALUATE_SCHEMA,
        "artifact": "/a/m.tflite",
        "artifact_name": "m.tflite",
        "sha256": "cd" * 32,
        "format": "tflite",
        "model": "lenet5",
        "quantization": "int8",
        "data": {"kind": "npz", "name": "fashion-mnist-test-200"},
        "split": None,
        "n": 200,
        "top1": 0.71,
        "top5": 0.97,
        "correct": {"top1": 142, "top5": 194},
        "top5_k": 5,
        "classes": 10,
        "background_class_dropped": False,
        "preprocess": {"mode": "unit", "input_shape": [32, 32, 1]},
        "input": {"name": "x"},
        "input_quantization": None,
        "runtime": "litert",
        "runtime_version": "2.3.0",
        "threads": None,
        "batch_size": 32,
        "seconds": 1.0,
        "inference_seconds": 0.5,
        "host": {"arch": "x86_64", "cpu": "AMD EPYC", "cores": 2},
        "created": "2026-12-01T00:00:00+00:00",
    }
    data.update(changes)
    return data


def _benchmark_row(**changes):
    from edgecnn.harness import BenchmarkSettings, empty_row

    row = empty_row("/a/m.tflite", BenchmarkSettings(threads=2))
    row.update(
        sha256="cd" * 32,
        bytes=70000,
        runtime="litert",
        runtime_version="2.3.0",
        latency_ms={"count": 50, "p50": 1.5, "p90": 1.7},
        host={"arch": "x86_64", "cores": 2},
        ops=["CONV_2D"],
        inputs=[{"name": "x", "shape": [1, 32, 32, 1], "dtype": "float32"}],
    )
    row.update(changes)
    return row


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, make",
    [(Manifest, _manifest), (Sidecar, _sidecar), (EvaluateRow, _evaluate_row), (BenchmarkRow, _benchmark_row)],
)
def test_each_record_round_trips_and_keeps_the_keys_it_does_not_type(cls, make):
    data = make()
    record = cls.from_json(copy.deepcopy(data), "x.json")
    assert record.to_json() == data
    assert cls.from_json(record.to_json(), "x.json") == record
    assert record.schema == cls.SCHEMA
    assert json.loads(json.dumps(record.to_json())) == data  # JSON-ready as it is
    with pytest.raises(AttributeError):  # frozen
        record.schema = "edgecnn.other/1"


def test_the_manifest_record_types_what_readers_use():
    record = Manifest.from_json(_manifest(), "m.json")
    assert record.optimization == Optimization(0.5, 16, True, extra={"preserve": "clusters"})
    assert record.optimization.optimized and not Optimization.NONE.optimized
    assert record.input_shape == (32, 32, 1) and record.option["classes"] == 10 and record.version == 1
    assert record.extra["parity"] == {"informative": True} and "parity" not in set(Manifest.keys())
    assert isinstance(record.inputs, tuple) and record.inputs[0]["name"] == "x"


def test_no_optimization_is_one_record_used_by_every_writer():
    from edgecnn.training.train import NO_OPTIMIZATION

    assert Optimization.NONE.to_json() == {"sparsity": None, "clusters": None, "qat": False}
    assert NO_OPTIMIZATION == Optimization.NONE.to_json()
    assert Optimization.from_json(None) is Optimization.NONE
    assert Optimization.NONE.with_(qat=True, preserve="sparsity").to_json() == {
        "sparsity": None,
        "clusters": None,
        "qat": True,
        "preserve": "sparsity",
    }
    literal = '"sparsity": None, "clusters": None'
    writers = [
        p
        for p in (REPO / "edgecnn").rglob("*.py")
        if p.name not in ("records.py", "export.py") and literal in p.read_text()
    ]
    assert writers == []


def test_the_records_import_no_building_block_and_name_calibrations_modes():
    import calibration
    from edgecnn import records

    assert records.PREPROCESS_MODES == calibration.PREPROCESS_MODES
    imported = [
        line.split()[1]
        for line in Path(records.__file__).read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
    ]
    assert {name.split(".")[0] for name in imported} <= {"__future__", "math", "dataclasses", "typing", "edgecnn"}
    assert {name for name in imported if name.startswith("edgecnn")} == {"edgecnn.errors"}


def test_the_benchmark_harness_rows_have_the_records_keys():
    from edgecnn.harness import ROW_KEYS

    assert ROW_KEYS == BenchmarkRow.keys()
    assert tuple(_benchmark_row()) == BenchmarkRow.keys()


# -- refusals ----------------------------------------------------------------------------------

REFUSED = {
    "manifest not an object": (Manifest, [1, 2], "is not an edgecnn manifest (a list"),
    "manifest of another tool": (Manifest, _manifest(schema="other.manifest/1"), "is not an edgecnn manifest"),
    "manifest newer": (Manifest, _manifest(schema="edgecnn.manifest/2"), "newer than this edgecnn reads"),
    "manifest version not a number": (Manifest, _manifest(schema="edgecnn.manifest/1.0"), "version is not a number"),
    "manifest without sha256": (Manifest, _manifest(sha256=None), "no `sha256`"),
    "manifest nested type": (
        Manifest,
        _manifest(optimization={"sparsity": "half"}),
        "`optimization.sparsity` is a string, not a number",
    ),
    "manifest impossible value": (
        Manifest,
        _manifest(preprocess={"mode": "unit", "crop_fraction": 2.0}),
        "is not in (0, 1]",
    ),
    "sidecar not an object": (Sidecar, "lenet5", "is not an edgecnn sidecar"),
    "sidecar field type": (Sidecar, _sidecar(class_names="ab"), "`class_names` is a string, not a list"),
    "sidecar optimization type": (Sidecar, _sidecar(optimization={"qat": 1}), "`optimization.qat` is an integer"),
    "sidecar of another tool": (Sidecar, _sidecar(schema="edgecnn.manifest/1"), "is not an edgecnn sidecar"),
    "sidecar newer": (Sidecar, _sidecar(schema="edgecnn.trained/9"), "newer than this edgecnn reads"),
    "benchmark row not an object": (BenchmarkRow, None, "not an edgecnn result row"),
    "benchmark row of another kind": (BenchmarkRow, _evaluate_row(), "not an edgecnn benchmark row"),
    "benchmark row newer": (BenchmarkRow, _benchmark_row(schema="edgecnn.benchmark/3"), "is newer than"),
    "benchmark row bad version": (
        BenchmarkRow,
        _benchmark_row(schema="edgecnn.benchmark/x"),
        "unreadable schema version",
    ),
    "benchmark row status": (BenchmarkRow, _benchmark_row(status="maybe"), "status 'maybe'"),
    "benchmark row ok without latency": (BenchmarkRow, _benchmark_row(latency_ms=None), "without `sha256`"),
    "benchmark row host type": (BenchmarkRow, _benchmark_row(host="vm"), "`host` is a string, not an object"),
    "benchmark row nested": (
        BenchmarkRow,
        _benchmark_row(variant={"optimization": {"clusters": 1.5}}),
        "`variant.optimization.clusters` is a number, not an integer",
    ),
    "evaluate row without top1": (EvaluateRow, _evaluate_row(top1=None), "without `sha256`, `top1` and `n`"),
    "evaluate row type": (EvaluateRow, _evaluate_row(n="200"), "`n` is a string, not an integer"),
    "optimization type": (Optimization, {"qat": "yes"}, "`qat` is a string, not true or false"),
    "optimization not an object": (Optimization, [0.5], "a list, not a JSON object"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_wrong_shape_is_refused_in_one_line_naming_where(case):
    cls, data, expected = REFUSED[case]
    with pytest.raises(EdgecnnError) as caught:
        cls.from_json(data, "where.json")
    message = str(caught.value)
    assert expected in message and "where.json" in message and "\n" not in message
    assert caught.value.exit_code == 1


# -- files written before ------------------------------------------------------------------------


def test_the_committed_results_hold_rows_of_both_kinds():
    schemas = {row.values[0]["schema"] for row in COMMITTED}
    assert {BENCHMARK_SCHEMA, EVALUATE_SCHEMA} <= schemas


@pytest.mark.parametrize("data", COMMITTED)
def test_committed_results_load_through_the_records(data):
    """Old rows lack keys added since (`warmup_runs`): they load, and write back what they had."""
    record = RECORDS[data["schema"]].from_json(data, "results.jsonl")
    again = record.to_json()
    assert {k: again[k] for k in data} == data
    assert all(again[k] is None for k in set(again) - set(data))
    assert record.sha256 and (record.sha256 == data["sha256"])


def test_manifests_written_by_export_load_and_round_trip(exported_int8):
    for fmt in ("tflite", "onnx"):
        path = Path(exported_int8[fmt]["path"]).with_name("manifest.json")
        data = json.loads(path.read_text())
        record = Manifest.from_json(data, str(path))
        assert record.to_json() == data and record.sha256 == exported_int8[fmt]["sha256"]
        assert record.optimization == Optimization.NONE and record.quantization == "int8"


@pytest.mark.parametrize("key", ["float32-tflite", "float32-onnx", "int8-tflite", "int8-onnx"])
def test_manifests_of_a_saved_model_export_load_and_round_trip(trained_tiny, key):
    """A saved model with a sidecar ({"preprocess": "unit"}, no schema), float and int8, both formats."""
    path = Path(trained_tiny[key]["path"]).with_name("manifest.json")
    data = json.loads(path.read_text())
    record = Manifest.from_json(data, str(path))
    assert record.to_json() == data and Manifest.from_json(record.to_json()) == record
    assert (record.quantization, record.format) == tuple(key.split("-"))
    assert record.preprocess["mode"] == "unit" and record.optimization == Optimization.NONE


def test_a_sidecar_without_a_schema_still_loads(tmp_path):
    from edgecnn.loading import read_sidecar, sidecar_for

    old = {"model": "lenet5", "preprocess": "unit", "class_names": ["a"]}
    (tmp_path / "m.edgecnn.json").write_text(json.dumps(old))
    assert read_sidecar(tmp_path / "m.keras") == old
    assert sidecar_for(tmp_path / "m.keras").optimization is None
    assert read_sidecar(tmp_path / "other.keras") == {} and sidecar_for(tmp_path / "other.keras") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{", "is not a readable sidecar"),
        ('{"preprocess": 5}', "`preprocess` is an integer, not a string"),
        ('{"schema": "edgecnn.trained/2"}', "newer than this edgecnn reads"),
    ],
)
def test_a_bad_sidecar_is_one_error_naming_the_file(tmp_path, text, expected):
    from edgecnn.loading import read_sidecar

    (tmp_path / "m.edgecnn.json").write_text(text)
    with pytest.raises(EdgecnnError) as caught:
        read_sidecar(tmp_path / "m.keras")
    assert expected in str(caught.value) and "m.edgecnn.json" in str(caught.value)


# -- writers -----------------------------------------------------------------------------------------


def test_write_manifest_refuses_what_readers_would_refuse_and_writes_nothing(tmp_path):
    from edgecnn.manifest import read_manifest, write_manifest

    with pytest.raises(EdgecnnError, match="`bytes` is a string"):
        write_manifest(tmp_path, _manifest(bytes="70 kB"))
    assert list(tmp_path.iterdir()) == []
    path = write_manifest(tmp_path, Manifest.from_json(_manifest()))
    assert read_manifest(path).to_json() == _manifest()


def test_the_sidecar_writer_goes_through_the_record(tmp_path):
    """save_model checks the sidecar as `edgecnn export` will read it: a wrong one publishes nothing."""
    code = (
        "import sys, json; from pathlib import Path\n"
        "from edgecnn._tf import import_keras; keras = import_keras()\n"
        "from edgecnn.training.train import save_model\n"
        "from edgecnn.errors import EdgecnnError\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "out = Path(sys.argv[1])\n"
        "try:\n"
        "    save_model(m, out / 'bad.keras', {'model': 'x', 'class_names': 'ab'})\n"
        "except EdgecnnError as exc:\n"
        "    print('refused:', exc)\n"
        "save_model(m, out / 'good.keras', {'schema': 'edgecnn.trained/1', 'model': 'x', 'class_names': ('a', 'b'),\n"
        "                                   'optimization': None})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout and "`class_names` is a string, not a list" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.edgecnn.json", "good.keras"]
    assert json.loads((tmp_path / "good.edgecnn.json").read_text()) == {
        "schema": SIDECAR_SCHEMA,
        "model": "x",
        "class_names": ["a", "b"],
        "optimization": None,
    }


# -- compare joins rows to manifests by sha256 ------------------------------------------------------------


def test_compare_takes_the_facts_of_the_manifest_with_the_rows_sha256(tmp_path):
    """The row's copies (an older export's facts) lose to the manifest of the same sha256, given
    as RESULTS or found beside the artifact; a manifest of another sha256 is not joined."""
    from edgecnn.reports import build_report

    folder = tmp_path / "lenet5-int8"
    folder.mkdir()
    artifact = folder / "lenet5-int8.tflite"
    artifact.write_bytes(b"\0\0\0\0TFL3")
    from edgecnn.manifest import sha256_of, write_manifest

    sha = sha256_of(artifact)
    write_manifest(
        folder, _manifest(sha256=sha, quantization="int8", model="lenet5", optimization=Optimization.NONE.to_json())
    )
    stale = _benchmark_row(
        artifact=str(artifact),
        artifact_name=artifact.name,
        sha256=sha,
        model="old-name",
        quantization="float16",
        weights="imagenet",
        variant={"optimization": {"sparsity": 0.9, "clusters": None, "qat": False}},
    )
    other = _benchmark_row(
        artifact="/gone/x.tflite",
        artifact_name="x.tflite",
        sha256="ef" * 32,
        model="mystery",
        quantization="dynamic",
        threads=1,
    )
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(stale) + "\n" + json.dumps(other) + "\n")
    for given in ([results], [results, folder / "manifest.json"]):
        rows = {row.facts.sha256: row for row in build_report(given).rows}
        joined = rows[sha].to_dict()
        assert (joined["model"], joined["quantization"], joined["weights"], joined["sparsity"]) == (
            "lenet5",
            "int8",
            "random",
            None,
        )
        assert rows["ef" * 32].to_dict()["model"] == "mystery"  # no manifest: the row's own copy
        assert len(rows) == 2


# -- the manifest's graph ---------------------------------------------------------------------

TFLITE_GRAPH = {
    "ops": 3,
    "op_counts": {"CONV_2D": 2, "FULLY_CONNECTED": 1},
    "conversions": {},
    "integer_only": True,
    "float_ops": [],
    "conversions_inside": [],
}
ONNX_GRAPH = {
    "ops": 5,
    "op_counts": {"QuantizeLinear": 2, "DequantizeLinear": 2, "Conv": 1},
    "conversions": {"QuantizeLinear": 2, "DequantizeLinear": 2},
    "integer_only": None,
}


@pytest.mark.parametrize("graph", [TFLITE_GRAPH, ONNX_GRAPH], ids=["tflite", "onnx"])
def test_the_manifest_types_its_graph_and_writes_it_back_as_it_came(graph):
    from edgecnn.records import GraphFacts

    data = _manifest(graph=copy.deepcopy(graph))
    record = Manifest.from_json(data, "m.json")
    assert isinstance(record.graph, GraphFacts) and record.graph.ops == graph["ops"]
    assert record.graph.integer_only is graph["integer_only"] and "graph" not in record.extra
    assert record.to_json() == data and Manifest.from_json(record.to_json()) == record


def test_a_manifest_written_before_the_graph_has_none_and_gains_no_key():
    record = Manifest.from_json(_manifest(), "m.json")
    assert record.graph is None and "graph" not in record.to_json()


@pytest.mark.parametrize(
    "graph, message",
    [
        ({**TFLITE_GRAPH, "ops": "3"}, "`graph.ops` is a string, not an integer"),
        ({**TFLITE_GRAPH, "integer_only": "yes"}, "`graph.integer_only` is a string, not true or false"),
        ({**TFLITE_GRAPH, "op_counts": {"CONV_2D": 1.5}}, "`graph.op_counts.CONV_2D` is a number, not an integer"),
        ([1], "`graph` is a list, not an object"),
    ],
)
def test_a_wrong_graph_is_one_line(graph, message):
    with pytest.raises(EdgecnnError, match=message.replace("(", r"\(")) as error:
        Manifest.from_json(_manifest(graph=graph), "m.json")
    assert "\n" not in str(error.value)


def test_the_manifest_is_written_in_exports_key_order():
    shuffled = dict(reversed(list(_manifest(graph=TFLITE_GRAPH, extra_key=1).items())))
    written = list(Manifest.from_json(shuffled, "m.json").to_json())
    assert written == [key for key in Manifest.KEY_ORDER if key in shuffled] + ["extra_key"]
