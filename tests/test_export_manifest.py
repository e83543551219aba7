"""The manifest assembled from the stages' records is the manifest export wrote before.

`tests/data/lenet5-manifests-ecdc7d6.json` holds the manifests that `edgecnn export` wrote at
ecdc7d6, when `_stage` still filled a dict literal and export ran QAT itself, for LeNet-5
(random weights, seed 0): int8 TFLite and ONNX, float16 TFLite, dynamic ONNX, and int8 after
QAT on the 200 shipped Fashion-MNIST images. The same requests now go through the converters'
records (`converters.record.Conversion`), `edgecnn.records.Manifest` and, for QAT, the training
stage before export (also as the CLI runs it: `build_model`, `quantization_aware`, then
`export(request, model=...)`). Every key must be there and hold the same value, the artifact's sha256
included; only what a run cannot repeat is blanked (times, paths, --out, and parity's measured
differences, which depend on the CPU's kernels).
"""

import json
from pathlib import Path

import pytest

from edgecnn.export import ExportRequest, build_model, export, quantization_aware

REPO = Path(__file__).resolve().parents[1]
BEFORE = json.loads((REPO / "tests" / "data" / "lenet5-manifests-ecdc7d6.json").read_text())
NPZ = REPO / "tests" / "data" / "fashion-mnist-test-200.npz"
# Keys the manifest gained since (the CLI's JSON keys may grow), with their value for these requests.
ADDED_SINCE = {
    "random_weights": None,  # what made a zoo model's random weights informative (--weights auto only)
}

REQUESTS = {
    "int8-all": dict(quantization="int8", formats=("tflite", "onnx"), calib_samples=16, parity_samples=8),
    "float16-tflite": dict(quantization="float16", formats=("tflite",), parity_samples=8),
    "dynamic-onnx": dict(quantization="dynamic", formats=("onnx",), parity_samples=8),
    "qat": dict(
        quantization="int8",
        qat=True,
        qat_dataset=str(NPZ),
        qat_limit=256,
        qat_batch_size=64,
        calib_samples=8,
        parity_samples=8,
    ),
}


MEASURED_PARITY = ("max_abs_diff", "reference_output_std", "qat_model_max_abs_diff")


def _blank(manifest: dict) -> dict:
    """What a second run cannot repeat, blanked as in the stored file; the checkout's path as <repo>."""
    manifest = json.loads(json.dumps(manifest).replace(f"{REPO}/", "<repo>/"))
    for key in ("path", "created", "export_seconds"):
        manifest.pop(key)
    for key, value in ADDED_SINCE.items():
        assert manifest.pop(key, value) == value, key
    manifest["options"]["out"] = None
    manifest["export_stages"] = {
        name: sorted(value) if isinstance(value, dict) else value for name, value in manifest["export_stages"].items()
    }
    # Parity's measured differences come from the CPU's kernels, not from the file: Keras's float
    # outputs and ONNX Runtime's dynamic int8 kernels differ between AVX-512 VNNI and AVX2 machines
    # (dynamic ONNX max_abs_diff 0.0002 on one, 0.0025 on the other, same sha256). Checked for
    # range, then blanked; the samples, agreement and informative flag are compared as they are.
    for key in MEASURED_PARITY:
        if key in manifest.get("parity", {}):
            assert 0 <= manifest["parity"][key] < 1, key
    manifest = _blank_measured(manifest)
    if manifest.get("qat"):
        manifest["qat"]["seconds"] = None
        for epoch in manifest["qat"]["history"]:
            epoch["seconds"] = None
    return manifest


def _blank_measured(manifest: dict) -> dict:
    manifest = json.loads(json.dumps(manifest))
    for key in MEASURED_PARITY:
        if key in manifest.get("parity", {}):
            manifest["parity"][key] = None
    return manifest


def _differences(before: dict, after: dict, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = [
            f"{where}.{key}: only {'before' if key in before else 'after'}" for key in sorted(set(before) ^ set(after))
        ]
        for key in before.keys() & after.keys():
            found += _differences(before[key], after[key], f"{where}.{key}")
        return found
    return [] if before == after else [f"{where}: {before!r} before, {after!r} now"]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("EDGECNN_EXPORT_PROCESSES", "one")  # as when the file was written
    out = tmp_path_factory.mktemp("manifests")
    made = {
        name: export(ExportRequest(model="lenet5", weights="none", out=out / name, **request))
        for name, request in REQUESTS.items()
    }
    # As `edgecnn export --qat` runs it: the model built, the QAT stage on it, then export.
    request = ExportRequest(model="lenet5", weights="none", out=out / "qat-staged", **REQUESTS["qat"])
    made["qat-staged"] = export(request, model=quantization_aware(build_model(request), request))
    return made


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("name", [*REQUESTS, "qat-staged"])
def test_manifests_have_the_keys_and_values_written_before(manifests, name):
    written = [_blank_measured(m) for m in BEFORE["qat" if name == "qat-staged" else name]]
    if written[0]["versions"] != manifests[name][0]["versions"]:
        pytest.skip("other tool versions than when the file was written: the bytes may differ")
    now = manifests[name]
    assert [m["artifact"] for m in now] == [m["artifact"] for m in written]
    for before, after in zip(written, now):
        assert list(after)[-1] == "path" and {"created", "export_seconds"} <= set(after)
        assert list(_blank(after)) == list(before)  # the same keys, in the same order
        assert _differences(before, _blank(after)) == []


def test_the_manifest_on_disk_is_the_one_returned(manifests):
    for manifest in manifests["int8-all"]:
        on_disk = json.loads(Path(manifest["path"]).with_name("manifest.json").read_text())
        assert on_disk == {key: value for key, value in manifest.items() if key != "path"}


def test_the_converters_records_hold_the_tensors_the_runtime_reads(manifests):
    """The manifest's inputs and outputs come from the converter's record: the runtime that
    opens the file reads the same names, shapes, dtypes and quantization."""
    from edgecnn.runtime import open_session

    for manifest in manifests["int8-all"] + manifests["dynamic-onnx"]:
        session = open_session(manifest["path"])
        assert manifest["inputs"] == [t.to_dict() for t in session.inputs]
        assert manifest["outputs"] == [t.to_dict() for t in session.outputs]
    tflite = manifests["int8-all"][0]
    assert tflite["inputs"][0]["dtype"] == "int8" and tflite["inputs"][0]["scale"] > 0
    assert tflite["graph"]["integer_only"] is True
