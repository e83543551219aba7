"""benchmarks/suite.py: the plan and its bookkeeping (fast), and a tiny run of the real CLI (slow).

The tiny run is LeNet-5 only (`--quick`: 300 training images, 1 epoch), the float32 variant in
TFLite and ONNX plus an impossible one (two quantizations at once, which `edgecnn export`
refuses), 100 test images, short benchmarks. About a minute for the first run on two cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

from suite import cli, config, report, state  # noqa: E402
from suite.config import Variant  # noqa: E402
from suite.runner import Outcome, reason_from  # noqa: E402
from suite.steps import Paths, Suite  # noqa: E402

IMPOSSIBLE = Variant("impossible", ("--int8", "--float16"))


# -- fast: no subprocess ------------------------------------------------------------------
def test_list_prints_the_settings_table(capsys):
    assert cli.main(["--list", "--models", "lenet5", "vgg16", "mobilenet_v2-a1.0-224"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "vgg16" in out and "3000" in out  # VGG-16's training-image limit
    assert "random weights" in out
    quick = cli.main(["--list", "--quick", "--models", "vgg16"])
    assert quick == 0 and "300" in capsys.readouterr().out


def test_unknown_model_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--models", "nosuchnet", "--list"])
    assert exc.value.code == 2
    assert "nosuchnet" in capsys.readouterr().err


def test_reason_is_the_error_line_not_the_box():
    typer_box = (
        "Usage: python -m edgecnn export [OPTIONS] MODEL\n"
        "╭─ Error ────────────────╮\n"
        "│ No such option: --qat  │\n"
        "╰────────────────────────╯\n"
    )
    assert reason_from(typer_box, 2) == "No such option: --qat"
    assert (
        reason_from("warning: x\nerror: choose one quantization\n  at the end\n", 2) == "error: choose one quantization"
    )
    assert reason_from("", -9) == "killed by signal 9"


def test_export_commands_for_qat_and_imagenet_rows(tmp_path):
    run = config.RunSettings(threads=2, calib_samples=32)
    suite = Suite(Paths(workdir=tmp_path, results=tmp_path / "r.jsonl"), run, state.SuiteLog(tmp_path / "l", "r"))
    resnet = config.MODELS["resnet50"]
    pruned = Path("models/resnet50-pruned50.keras")
    argv, options = suite.export_argv(resnet, config.VARIANTS["pruned50-qat-int8"], pruned)
    assert argv[:4] == ["export", "models/resnet50-pruned50.keras", "--int8", "--qat"]
    joined = " ".join(argv)
    assert "--dataset fashion-mnist" in joined and "--calib fashion-mnist" in joined
    assert f"--qat-limit {resnet.qat_limit}" in joined and "--calib-samples 32" in joined
    assert options["quantization"] == "int8" and options["model"] == "models/resnet50-pruned50.keras"
    big = config.MODELS["mobilenet_v2-a1.0-224"]
    argv, options = suite.export_argv(big, config.VARIANTS["int8"], None)
    joined = " ".join(argv)
    assert "--weights none --input-size 224 --alpha 1" in joined and "--calib" not in argv
    assert options["weights"] == "none" and options["calib"] == "default"


def test_results_rows_are_found_by_sha_and_settings_and_replaced_by_identity(tmp_path):
    path = tmp_path / "results.jsonl"
    identity = state.benchmark_identity("a/m.tflite", "litert", 2, None)
    row = {**identity, "status": "ok", "sha256": "abc", "batch": 1, "settings": {"runs": 10}}
    other = {**state.benchmark_identity("a/m.tflite", "litert", 1, None), "status": "ok", "sha256": "abc"}
    path.write_text("".join(json.dumps(r) + "\n" for r in (row, other)))
    results = state.Results(path)
    assert results.find(identity, "abc", {"settings.runs": 10}) == row
    assert results.find(identity, "abc", {"settings.runs": 50}) is None
    assert results.find(identity, "def", {"settings.runs": 10}) is None
    assert results.forget(identity) == 1
    assert results.rows() == [other]  # another thread count is another row
    assert results.forget_missing("a/mobilenet", tmp_path) == 0  # another model's folder
    assert results.forget_missing("a", tmp_path) == 1 and results.rows() == []  # a/m.tflite is gone


def test_failed_steps_are_the_latest_attempt_of_each(tmp_path):
    log = tmp_path / "suite-log.jsonl"
    entries = [
        {"step": "export m v onnx", "kind": "export", "format": "onnx", "status": "failed", "reason": "x"},
        {"step": "export m v tflite+onnx", "kind": "export", "format": "tflite+onnx", "status": "ok"},
        {"step": "export m w onnx", "kind": "export", "format": "onnx", "status": "refused", "reason": "y"},
        {"step": "export m w onnx", "kind": "export", "format": "onnx", "status": "skipped"},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    latest = report.latest_steps(log)
    assert latest["export m v onnx"]["status"] == "ok"  # done since, by the two-format command
    assert latest["export m w onnx"]["status"] == "refused"  # a skip does not hide the last attempt


class _FakeCLI:
    """Stands in for `run_edgecnn`: train fails or works; export publishes TFLite, fails on ONNX."""

    def __init__(self, train_ok: bool):
        self.train_ok, self.calls = train_ok, []

    def __call__(self, argv, *, cwd, log_path, timeout=None):
        self.calls.append(argv)
        reason = None
        if argv[0] in ("train", "prune"):
            out = cwd / argv[argv.index("--out") + 1]
            if self.train_ok:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(b"keras")
                out.with_name(f"{out.stem}.edgecnn.json").write_text('{"epochs": 1}')
            else:
                reason = "error: training failed: out of memory"
        elif argv[0] == "export":
            fmt = argv[argv.index("--format") + 1]
            if fmt in ("tflite", "all"):  # published first, as export does
                folder = cwd / argv[argv.index("--out") + 1] / "m-float32"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "m.tflite").write_bytes(b"tfl3")
                options = {
                    "model": argv[1],
                    "calib": "fashion-mnist",
                    "quantization": "float32",
                    "calib_samples": 100,
                    "seed": 0,
                }
                (folder / "manifest.json").write_text(
                    json.dumps(
                        {"format": "tflite", "artifact": "m.tflite", "bytes": 4, "sha256": "s", "options": options}
                    )
                )
            reason = None if fmt == "tflite" else "error: onnx conversion failed"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return Outcome(0 if reason is None else 1, 0.1, "[]", reason, log_path)


def _fake_suite(tmp_path, monkeypatch, fake: _FakeCLI) -> tuple[Suite, state.SuiteLog]:
    from suite import steps

    monkeypatch.setattr(steps, "run_edgecnn", fake)
    log = state.SuiteLog(tmp_path / "suite-log.jsonl", "run")
    run = config.RunSettings(threads=1, variants=("float32", "pruned50"))
    return Suite(Paths(workdir=tmp_path / "work", results=tmp_path / "results.jsonl"), run, log), log


def test_what_depends_on_a_failed_step_is_blocked(tmp_path, monkeypatch):
    suite, log = _fake_suite(tmp_path, monkeypatch, _FakeCLI(train_ok=False))
    suite.model(config.MODELS["lenet5"])
    status = {e["step"]: (e["status"], e["reason"]) for e in log.entries}
    assert status["train lenet5"] == ("failed", "error: training failed: out of memory")
    assert status["prune lenet5"][0] == "blocked" and "train lenet5" in status["prune lenet5"][1]
    assert status["export lenet5 pruned50 onnx"][0] == "blocked"
    assert not any(step.startswith(("benchmark", "evaluate")) for step in status)


def test_a_format_that_fails_is_retried_alone_and_the_other_kept(tmp_path, monkeypatch):
    fake = _FakeCLI(train_ok=True)
    suite, log = _fake_suite(tmp_path, monkeypatch, fake)
    artifacts = suite.export(config.MODELS["lenet5"], config.VARIANTS["float32"], Path("models/lenet5.keras"))
    assert list(artifacts) == ["tflite"]
    status = [(e["step"], e["status"]) for e in log.entries]
    assert status == [
        ("export lenet5 float32 tflite+onnx", "split"),
        ("export lenet5 float32 tflite", "ok"),
        ("export lenet5 float32 onnx", "failed"),
    ]
    assert [call[call.index("--format") + 1] for call in fake.calls] == ["all", "onnx"]


# -- slow: the real CLI on a tiny configuration ---------------------------------------------
def _run_suite(base: Path, *extra: str) -> tuple[int, Path]:
    args = [
        "--quick",
        "--models",
        "lenet5",
        "--variants",
        "float32",
        "impossible",
        "--eval-limit",
        "100",
        "--runs",
        "5",
        "--min-secs",
        "0.05",
        "--max-secs",
        "2",
        "--calib-samples",
        "16",
        "--workdir",
        str(base / "work"),
        "--out",
        str(base / "out"),
        *extra,
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(config.VARIANTS, IMPOSSIBLE.name, IMPOSSIBLE)
        code = cli.main(args)
    (results_dir,) = (base / "out").iterdir()
    return code, results_dir


def _this_run(results_dir: Path) -> list[dict]:
    entries = state.read_jsonl(results_dir / "suite-log.jsonl")
    last = entries[-1]["run"]
    return [e for e in entries if e["run"] == last and e["kind"] != "run"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("suite")
    code, results_dir = _run_suite(base)
    return {
        "base": base,
        "code": code,
        "dir": results_dir,
        "results": (results_dir / "results.jsonl").read_text(),
        "log": _this_run(results_dir),
    }


@pytest.mark.slow
def test_first_run_measures_every_artifact_and_records_the_refusal(first_run):
    assert first_run["code"] == 0  # a refused variant is recorded, not a failure of the run
    rows = [json.loads(line) for line in first_run["results"].splitlines()]
    bench = {r["runtime"]: r for r in rows if r["schema"] == "edgecnn.benchmark/1"}
    evals = {r["runtime"]: r for r in rows if r["schema"] == "edgecnn.evaluate/1"}
    assert set(bench) == set(evals) == {"litert", "onnxruntime"} and len(rows) == 4
    assert all(r["status"] == "ok" and r["threads"] == bench["litert"]["threads"] for r in bench.values())
    assert all(r["n"] == 100 for r in evals.values())
    work = first_run["base"] / "work"
    for row in rows:  # the rows are about the artifacts the suite exported
        manifest = json.loads((work / row["artifact"]).with_name("manifest.json").read_text())
        assert row["sha256"] == manifest["sha256"] and manifest["options"]["calib_samples"] == 16

    status = {e["step"]: e for e in first_run["log"]}
    assert status["train lenet5"]["status"] == "ok" and status["train lenet5"]["seconds"] > 0
    assert status["export lenet5 float32 tflite+onnx"]["status"] == "ok"
    for fmt in ("tflite", "onnx"):
        refused = status[f"export lenet5 impossible {fmt}"]
        assert refused["status"] == "refused" and "choose one quantization" in refused["reason"]
        assert status[f"benchmark lenet5 float32 {fmt}"]["status"] == "ok"
        assert status[f"evaluate lenet5 float32 {fmt}"]["status"] == "ok"
    assert "compare" in {e["step"] for e in state.read_jsonl(first_run["dir"] / "suite-log.jsonl")}
    md = (first_run["dir"] / "RESULTS.md").read_text()
    assert "export lenet5 impossible onnx" in md and "choose one quantization" in md
    assert "| lenet5 | lenet5 | 32x32x1 |" in md and "Quick run" in md


@pytest.mark.slow
def test_second_run_skips_what_is_done(first_run):
    code, results_dir = _run_suite(first_run["base"])
    assert code == 0
    entries = _this_run(results_dir)
    done = [e for e in entries if "impossible" not in e["step"] and e["kind"] != "compare"]
    # train, export in each format, benchmark and evaluate each artifact
    assert len(done) == 7 and {e["status"] for e in done} == {"skipped"}, entries
    assert {e["status"] for e in entries if "impossible" in e["step"]} == {"refused", "split"}  # tried again
    assert (results_dir / "results.jsonl").read_text() == first_run["results"]  # did not grow


@pytest.mark.slow
def test_force_redoes_and_replaces_the_rows(first_run):
    code, results_dir = _run_suite(first_run["base"], "--force", "--formats", "tflite")
    assert code == 0
    entries = {e["step"]: e["status"] for e in _this_run(results_dir)}
    for step in (
        "train lenet5",
        "export lenet5 float32 tflite",
        "benchmark lenet5 float32 tflite",
        "evaluate lenet5 float32 tflite",
    ):
        assert entries[step] == "ok"
    rows = state.read_jsonl(results_dir / "results.jsonl")
    assert len(rows) == 4  # the TFLite rows were replaced, the ONNX ones kept
    before = {r["schema"] + r["runtime"]: r for r in map(json.loads, first_run["results"].splitlines())}
    after = {r["schema"] + r["runtime"]: r for r in rows}
    assert after["edgecnn.benchmark/1litert"]["created"] > before["edgecnn.benchmark/1litert"]["created"]
    assert after["edgecnn.benchmark/1onnxruntime"] == before["edgecnn.benchmark/1onnxruntime"]
