"""The benchmark scripts still read the results committed before they changed: each one's
Markdown, rendered again from its committed JSON, is the committed Markdown."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RESULTS = BENCHMARKS / "results" / "amd-epyc-2c-x86_64"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["export_quality", "int8_agreement", "optimization"])
def test_committed_results_render_as_committed(name):
    report = json.loads((RESULTS / f"{name}.json").read_text())
    assert _script(name).markdown(report) == (RESULTS / f"{name}.md").read_text()


def test_export_quality_reads_the_integer_only_check_from_the_manifest(monkeypatch):
    """describe_variant takes the op census and integer-only verdict from the manifest's `graph`
    (what export recorded), not from a check of its own: a manifest saying "not integer-only"
    is reported so, whatever the file."""
    module = _script("export_quality")

    class Session:
        def op_types(self):
            return ["QUANTIZE", "CONV_2D", "DEQUANTIZE"]

    module_open = {}

    def fake_open(path, threads=None):
        module_open["path"] = path
        return Session()

    monkeypatch.setattr("edgecnn.runtime.open_session", fake_open)
    manifest = {
        "format": "tflite",
        "quantization": "int8",
        "weights": "random",
        "bytes": 30,
        "path": "m.tflite",
        "float32_weight_bytes": 100,
        "parity": {},
        "export_seconds": 1.0,
        "sha256": "0" * 64,
        "inputs": [{"dtype": "int8"}],
        "outputs": [{"dtype": "float32"}],
        "graph": {
            "op_counts": {"CONV_2D": 1, "QUANTIZE": 1, "DEQUANTIZE": 1},
            "integer_only": False,
            "float_ops": ["1:CONV_2D"],
            "conversions_inside": [],
        },
    }
    record = module.describe_variant("int8-tflite", manifest, {"tflite": 100}, threads=1)
    assert record["int8_clean"] is False and record["graph_check"]["float_ops_inside"] == ["1:CONV_2D"]
    assert record["op_counts"] == manifest["graph"]["op_counts"] and record["ratio_to_float32_file"] == 0.3
    assert record["graph_check"]["output_dtypes"] == ["float32"] and module_open["path"] == "m.tflite"
