"""`edgecnn benchmark` and `edgecnn.harness`: rows, failures that stay one line, no TensorFlow.

Timings depend on the machine: these tests check behaviour and sanity (count >= runs,
min <= p50 <= p90 <= p99 <= max, all > 0), never a number.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import edgecnn.cli.benchmark  # noqa: F401 (registers `benchmark` on the app, as edgecnn.cli does)
from edgecnn.cli import app
from edgecnn.errors import EdgecnnError
from edgecnn.harness import ROW_KEYS, BenchmarkSettings, benchmark_artifact, interpret_worker
from edgecnn.harness.measure import latency_stats, make_feeds, random_array, should_stop, time_invokes
from edgecnn.results import BENCHMARK_SCHEMA
from edgecnn.runtime import TensorInfo

runner = CliRunner()
FAST = ["--runs", "5", "--min-secs", "0", "--warmup", "1"]
DATA = Path(__file__).parent / "data" / "imagenet-16"


def _paths(exported_int8):
    return exported_int8["tflite"]["path"], exported_int8["onnx"]["path"]


def _rows(result):
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def _error_lines(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert all(line.startswith("error: ") for line in lines), result.stderr
    return lines


def _check_latency(row, runs=5):
    lat = row["latency_ms"]
    assert set(lat) == {"count", "min", "max", "mean", "std", "p50", "p90", "p99"}
    assert lat["count"] >= runs
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"] and lat["std"] >= 0
    assert row["init_ms"] > 0 and row["first_ms"] > 0 and row["peak_rss_mb"] > 0


# -- the measurement, unit by unit -------------------------------------------------------


def test_latency_stats_are_numpy_percentiles():
    times = [0.004, 0.001, 0.002, 0.003, 0.010]
    stats = latency_stats(times)
    ms = np.asarray(times) * 1e3
    assert stats["count"] == 5 and stats["min"] == 1.0 and stats["max"] == 10.0
    assert stats["p50"] == pytest.approx(np.percentile(ms, 50))
    assert stats["p90"] == pytest.approx(np.percentile(ms, 90))
    assert stats["p99"] == pytest.approx(np.percentile(ms, 99))
    assert stats["mean"] == pytest.approx(ms.mean()) and stats["std"] == pytest.approx(ms.std(), abs=1e-4)


@pytest.mark.parametrize(
    "count, elapsed, expected",
    [
        (49, 5.0, None),  # enough time, too few runs
        (50, 0.5, None),  # enough runs, too little time
        (50, 1.0, "runs"),  # both: done
        (3, 150.0, "max_secs"),  # the cap wins over too few runs
    ],
)
def test_stop_rule_is_benchmark_models(count, elapsed, expected):
    assert should_stop(count, elapsed, runs=50, min_secs=1.0, max_secs=150.0) == expected


class _FakeSession:
    """Each invoke advances a fake clock by `step` seconds."""

    def __init__(self, clock, step):
        self.clock, self.step, self.invokes, self.fed = clock, step, 0, []

    def set_inputs(self, arrays):
        self.fed.append(arrays[0].tobytes())

    def invoke(self):
        self.invokes += 1
        self.clock.now += self.step

    def get_outputs(self):
        return []


class _Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_time_invokes_first_warmup_and_loop_apart():
    clock = _Clock()
    session = _FakeSession(clock, 0.01)
    feeds = [[np.zeros(1, np.int8)]]
    timing = time_invokes(session, feeds, warmup=3, runs=10, min_secs=0.5, max_secs=100, clock=clock)
    assert timing.first_s == pytest.approx(0.01) and len(timing.warmup_s) == 3
    assert len(timing.times_s) == 50  # 10 runs reached first; 0.5 s needs 50 of 10 ms
    assert timing.stopped_by == "runs" and session.invokes == 1 + 3 + 50
    assert session.fed == [feeds[0][0].tobytes()]  # one input set before the loop, never again


def test_time_invokes_stops_at_max_secs_and_rotates_feeds():
    clock = _Clock()
    session = _FakeSession(clock, 1.0)
    feeds = [[np.full(1, i, np.int8)] for i in range(3)]
    timing = time_invokes(session, feeds, warmup=0, runs=1000, min_secs=0, max_secs=5, clock=clock)
    assert timing.stopped_by == "max_secs" and len(timing.times_s) == 5
    assert len(set(session.fed)) == 3  # every prepared batch was fed


def test_random_inputs_cover_the_dtype_range():
    rng = np.random.default_rng(0)
    q = random_array((1000,), "int8", rng)
    assert q.dtype == np.int8 and q.min() < -100 and q.max() > 100
    u = random_array((1000,), "uint8", rng)
    assert u.dtype == np.uint8 and u.max() > 200
    f = random_array((1000,), "float32", rng)
    assert f.dtype == np.float32 and -1 <= f.min() and f.max() <= 1
    feeds, records = make_feeds([TensorInfo("x", (-1, 8, 8, 3), "int8", 0.1, 0)], batch=3)
    assert feeds[0][0].shape == (3, 8, 8, 3) and records[0]["shape"] == [3, 8, 8, 3]
    with pytest.raises(EdgecnnError, match="dynamic dimensions"):
        make_feeds([TensorInfo("x", (-1, -1, -1, 3), "float32")])


def test_interpret_worker_reasons():
    load = '{"phase": "start"}\n{"phase": "load"}\n'
    ok = load + '{"result": {"status": "ok", "latency_ms": {}}}\n'
    assert interpret_worker(0, ok, "")[0] == {"status": "ok", "latency_ms": {}}
    failed = load + '{"result": {"status": "failed", "error": "bad file"}}\n'
    assert interpret_worker(1, failed, "") == (None, "bad file")
    result, reason = interpret_worker(
        -signal.SIGSEGV, load, "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    )
    assert result is None and reason == "runtime crashed (SIGSEGV, signal 11) while loading the model"
    _, reason = interpret_worker(-signal.SIGABRT, load + '{"phase": "loop"}\n', "F tflite: check failed\n")
    assert reason == "runtime crashed (SIGABRT, signal 6) during the timed runs: F tflite: check failed"
    _, reason = interpret_worker(3, "garbage\n", "")
    assert reason == "benchmark worker exited with code 3 while starting"


def test_settings_refuse_what_cannot_work():
    from edgecnn.errors import BadArgument

    for bad in (
        dict(runtime="tensorrt"),
        dict(provider="npu"),
        dict(runs=0),
        dict(threads=0),
        dict(warmup=-1),
        dict(min_secs=2, max_secs=1),
        dict(batch=0),
        dict(preprocess="yolo"),
        dict(runtime="litert", provider="cuda"),
    ):
        with pytest.raises(BadArgument):
            BenchmarkSettings(**bad).check()


# -- the CLI as argument mapping -----------------------------------------------------------


def _fake_rows(artifacts, settings, progress=None, **_):
    from edgecnn.harness import empty_row

    return [empty_row(a, settings) for a in artifacts]


def test_cli_maps_every_option(monkeypatch, tmp_path):
    seen = {}

    def fake(artifacts, settings, progress=None, **kw):
        seen["artifacts"], seen["settings"] = list(artifacts), settings
        return _fake_rows(artifacts, settings)

    monkeypatch.setattr("edgecnn.harness.benchmark_many", fake)
    result = runner.invoke(
        app,
        [
            "benchmark",
            "a.tflite",
            "b.onnx",
            "--runtime",
            "onnxruntime",
            "--threads",
            "3",
            "--warmup",
            "2",
            "--runs",
            "7",
            "--min-secs",
            "0.5",
            "--max-secs",
            "9",
            "--provider",
            "cpu",
            "--batch",
            "4",
            "--data",
            "default",
            "--preprocess",
            "tf",
            "--samples",
            "8",
            "--seed",
            "5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["artifacts"] == ["a.tflite", "b.onnx"]
    assert seen["settings"] == BenchmarkSettings(
        runtime="onnxruntime",
        threads=3,
        provider="cpu",
        warmup=2,
        runs=7,
        min_secs=0.5,
        max_secs=9.0,
        batch=4,
        data="default",
        preprocess="tf",
        samples=8,
        seed=5,
    )
    rows = json.loads(result.stdout)
    assert [r["artifact"] for r in rows] == ["a.tflite", "b.onnx"]


def test_cli_defaults_are_benchmark_models(monkeypatch):
    seen = {}

    def fake(artifacts, settings, **kw):
        seen["s"] = settings
        return _fake_rows(artifacts, settings)

    monkeypatch.setattr("edgecnn.harness.benchmark_many", fake)
    result = runner.invoke(app, ["benchmark", "a.tflite", "--json"])
    assert result.exit_code == 0, result.output
    s = seen["s"]
    assert (s.warmup, s.runs, s.min_secs, s.max_secs, s.runtime, s.threads, s.batch) == (
        1,
        50,
        1.0,
        150.0,
        "auto",
        None,
        1,
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["--runtime", "tensorflow-lite"], "unknown runtime"),
        (["--provider", "npu"], "unknown provider"),
        (["--runs", "0"], "--runs"),
        (["--threads", "0"], "--threads"),
        (["--min-secs", "5", "--max-secs", "1"], "--max-secs"),
        (["--preprocess", "yolo"], "preprocessing mode"),
        (["--remote-python", "/usr/bin/python3"], "--remote"),
        (["--data", "no/such/folder"], "no such file or folder"),
    ],
)
def test_bad_options_exit_2_before_measuring(monkeypatch, args, words):
    monkeypatch.setattr("edgecnn.harness.benchmark_many", lambda *a, **k: pytest.fail("measured"))
    result = runner.invoke(app, ["benchmark", "a.tflite", *args])
    assert result.exit_code == 2
    (line,) = _error_lines(result)
    assert words in line


@pytest.mark.parametrize("throttled", ["0x50005", "0x0", None])
def test_a_throttled_pi_is_warned_about_once(monkeypatch, tmp_path, throttled):
    import edgecnn.harness as harness

    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0\0\0\0TFL3")  # enough for the checks made before the worker
    host = {"hostname": "pi", "cpu": "Cortex-A72", "cores": 4, "arch": "aarch64", "throttled": throttled}
    monkeypatch.setattr(
        harness,
        "_run_worker",
        lambda job, timeout: (  # a measurement: rows are checked as made
            {"status": "ok", "error": None, "latency_ms": {"p50": 1.0}, "host": host, "warnings": []},
            None,
            "",
        ),
    )
    result = runner.invoke(app, ["benchmark", str(model), str(model), "--json"])
    assert result.exit_code == 0, result.output
    rows = _rows(result)
    stderr = [line for line in result.stderr.splitlines() if line.strip()]
    if throttled != "0x50005":
        assert [row["warnings"] for row in rows] == [[], []] and stderr == []
        return
    (message,) = rows[0]["warnings"]
    assert rows[1]["warnings"] == [message]
    for words in (
        "0x50005",
        "under-voltage now, throttled now, under-voltage since boot, throttled since boot",
        "0x2 arm frequency capped now",
        "0x8 soft temperature limit now",
        "0x10000",
        "latency figures may be unreliable",
    ):
        assert words in message
    assert stderr == [f"warning: {message}"]  # once for the two rows


@pytest.mark.parametrize(
    "report, words",
    [
        ({"status": "ok", "latency_ms": {"p50": "fast"}}, "`latency_ms.p50` is a string, not a number"),
        ({"status": "ok", "latency_ms": None}, "marked ok without `sha256` and `latency_ms`"),
        ({"status": "ok", "latency_ms": {"p50": 1.0}, "host": "pi"}, "`host` is a string, not an object"),
        ({"status": "ok", "latency_ms": {"p50": 1.0}, "threads": 1.5}, "`threads` is a number, not an integer"),
    ],
)
def test_a_malformed_measurement_is_refused_where_the_row_is_made(monkeypatch, tmp_path, report, words):
    """A worker report that would not make a benchmark row is one failed row naming the first wrong
    field, here, not a row written and later skipped by `edgecnn compare`; nothing of it is kept."""
    import edgecnn.harness as harness
    from edgecnn.records import BenchmarkRow

    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0\0\0\0TFL3")
    monkeypatch.setattr(harness, "_run_worker", lambda job, timeout: (dict(report, error=None), None, ""))
    row = benchmark_artifact(model, BenchmarkSettings(runs=1, min_secs=0))
    assert row["status"] == "failed" and row["error"].startswith("the measurement of m.tflite: ")
    assert words in row["error"], row["error"]
    assert row["latency_ms"] is None and row["host"] is None  # the measurement's fields are not kept
    assert BenchmarkRow.from_json(row).status == "failed"  # what compare reads: a row, not a skip
    result = runner.invoke(app, ["benchmark", str(model), "--out", str(tmp_path / "rows.jsonl")])
    assert result.exit_code == 1 and words in result.stdout + result.stderr
    (line,) = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert json.loads(line)["status"] == "failed"


def test_check_row_refuses_a_row_of_the_wrong_shape():
    from edgecnn.harness import check_row

    good = {"schema": BENCHMARK_SCHEMA, "status": "failed", "artifact": "m.tflite", "error": "no"}
    assert check_row(good, "row") is good
    for bad, words in (
        ({**good, "status": "maybe"}, "status 'maybe'"),
        ({**good, "bytes": "12"}, "`bytes` is a string"),
        ({**good, "schema": "edgecnn.benchmark/9"}, "newer than this edgecnn reads"),
        ({"schema": BENCHMARK_SCHEMA, "status": "failed"}, "names no artifact"),
    ):
        with pytest.raises(EdgecnnError, match="^the row of m: ") as info:
            check_row(bad, "the row of m")
        assert words in str(info.value), info.value


def test_a_malformed_remote_row_is_a_failed_row(monkeypatch, tmp_path):
    """A row the remote edgecnn returns is checked as a local one: the wrong shape is one failed row."""
    import edgecnn.harness.remote as remote

    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0\0\0\0TFL3")
    monkeypatch.setattr(remote.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(
        remote,
        "_run_remote",
        lambda *a: {0: {"schema": BENCHMARK_SCHEMA, "status": "ok", "sha256": "ab", "latency_ms": {"p50": []}}},
    )
    (row,) = remote.benchmark_remote([model], BenchmarkSettings(runs=1, min_secs=0), target="pi")
    assert row["status"] == "failed" and row["remote"] == "pi" and row["latency_ms"] is None
    assert row["error"] == "the row pi returned for m.tflite: `latency_ms.p50` is a list, not a number"


# -- real artifacts ------------------------------------------------------------------------


def test_rows_are_complete_with_manifest_fields(exported_int8):
    tflite, onnx = _paths(exported_int8)
    result = runner.invoke(app, ["benchmark", tflite, onnx, "--threads", "1", "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == ""  # LiteRT's XNNPACK notice stays in the worker
    rows = _rows(result)
    assert len(rows) == 2
    for row, manifest in zip(rows, (exported_int8["tflite"], exported_int8["onnx"])):
        assert tuple(row) == ROW_KEYS
        assert row["schema"] == BENCHMARK_SCHEMA and row["status"] == "ok" and row["error"] is None
        _check_latency(row)
        assert row["sha256"] == manifest["sha256"] and row["bytes"] == manifest["bytes"]
        assert row["artifact"] == manifest["path"] and row["artifact_name"] == manifest["artifact"]
        assert (row["model"], row["quantization"], row["weights"]) == ("mobilenet_v2", "int8", manifest["weights"])
        assert row["variant"]["alpha"] == 0.35 and row["variant"]["input_size"] == 32
        assert row["variant"]["manifest_sha256_matches"] is True
        assert row["threads"] == 1 and row["batch"] == 1 and row["remote"] is None
        assert row["settings"] == {
            "warmup": 1,
            "warmup_secs": 0.5,
            "runs": 5,
            "min_secs": 0.0,
            "max_secs": 150.0,
            "data": None,
            "preprocess": None,
            "samples": None,
            "seed": 0,
            "input_scale": None,
            "input_zero_point": None,
        }
        assert row["warmup_runs"] >= 1
        assert row["ops"] == sorted(row["op_counts"]) and sum(row["op_counts"].values()) > 10
        assert {"cpu", "cores", "arch", "os", "governor", "temperatures_c", "throttled"} <= set(row["host"])
        assert row["runtime_version"] and row["created"]
    assert (rows[0]["format"], rows[0]["runtime"], rows[0]["provider"]) == ("tflite", "litert", "cpu")
    assert "CONV_2D" in rows[0]["ops"] and "DEPTHWISE_CONV_2D" in rows[0]["ops"]
    assert rows[0]["inputs"][0]["dtype"] == "int8"
    assert (rows[1]["format"], rows[1]["runtime"], rows[1]["provider"]) == ("onnx", "onnxruntime", "cpu")
    assert "Conv" in rows[1]["ops"] and "QuantizeLinear" in rows[1]["ops"]


def test_table_for_people(exported_int8):
    tflite, onnx = _paths(exported_int8)
    result = runner.invoke(app, ["benchmark", tflite, onnx, *FAST])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for word in (
        "p50 ms",
        "p90 ms",
        "mean ± std ms",
        "init ms",
        "first ms",
        "RSS MB",
        "litert",
        "onnxruntime",
        "cpu",
        Path(tflite).name,
        Path(onnx).name,
        "host ",
    ):
        assert word in out, out


def test_third_party_file_without_manifest(exported_int8, tmp_path):
    copy = tmp_path / "theirs.tflite"
    shutil.copy(exported_int8["tflite"]["path"], copy)
    row = benchmark_artifact(copy, BenchmarkSettings(runs=3, min_secs=0))
    assert row["status"] == "ok", row["error"]
    assert row["model"] is None and row["quantization"] is None and row["variant"] is None
    assert row["sha256"] == exported_int8["tflite"]["sha256"]
    _check_latency(row, runs=3)


def test_an_export_folder_stands_for_its_artifact(exported_int8):
    folder = str(Path(exported_int8["onnx"]["path"]).parent)
    row = benchmark_artifact(folder, BenchmarkSettings(runs=2, min_secs=0))
    assert row["status"] == "ok" and row["artifact"] == exported_int8["onnx"]["path"]


def test_bad_files_fail_alone_one_line_each(exported_int8, tmp_path):
    tflite, onnx = _paths(exported_int8)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(Path(tflite).read_bytes()[:100])
    half = tmp_path / "half.onnx"
    half.write_bytes(Path(onnx).read_bytes()[:1000])
    text = tmp_path / "notes.tflite"
    text.write_text("not a model at all\n")
    other = tmp_path / "weights.h5"
    other.write_bytes(b"\x89HDF\r\n")
    missing = tmp_path / "missing.tflite"
    bad = [truncated, half, text, other, missing]
    result = runner.invoke(
        app,
        ["benchmark", str(truncated), tflite, str(half), str(text), str(other), str(missing), onnx, "--json", *FAST],
    )
    assert result.exit_code == 1
    rows = _rows(result)
    assert [r["status"] for r in rows] == ["failed", "ok", "failed", "failed", "failed", "failed", "ok"]
    lines = _error_lines(result)
    assert len(lines) == len(bad)
    for line, path in zip(lines, bad):
        assert str(path) in line
    by_name = {Path(r["artifact"]).name: r for r in rows}
    assert "not a loadable TFLite model" in by_name["truncated.tflite"]["error"]
    assert "not a loadable ONNX model" in by_name["half.onnx"]["error"]
    assert "not a TFLite model" in by_name["notes.tflite"]["error"]
    # .h5 is taken as a Keras float reference; this one is a corrupt HDF5 file
    assert "not a loadable Keras model" in by_name["weights.h5"]["error"]
    assert "no such file" in by_name["missing.tflite"]["error"]
    assert by_name["truncated.tflite"]["sha256"] and by_name["truncated.tflite"]["bytes"] == 100
    for row in rows:
        assert tuple(row) == ROW_KEYS and "\n" not in (row["error"] or "")


def test_a_crashing_runtime_becomes_a_failed_row(exported_int8, monkeypatch, tmp_path):
    """A worker killed by a signal (what a bad flatbuffer can do) fails its row; the next goes on."""
    import edgecnn.harness as harness

    crash = tmp_path / "crash.py"
    crash.write_text(
        textwrap.dedent("""
        import os, signal, sys
        print('{"phase": "start"}'); print('{"phase": "load"}'); sys.stdout.flush()
        sys.stderr.write("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n"); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    """)
    )
    real = harness.worker_command
    target = exported_int8["tflite"]["path"]
    monkeypatch.setattr(
        harness, "worker_command", lambda job: [sys.executable, str(crash)] if job["path"] == target else real(job)
    )
    copy = tmp_path / "fine.onnx"
    shutil.copy(exported_int8["onnx"]["path"], copy)
    rows = harness.benchmark_many([target, copy], BenchmarkSettings(runs=2, min_secs=0))
    assert rows[0]["status"] == "failed"
    assert rows[0]["error"] == "runtime crashed (SIGSEGV, signal 11) while loading the model"
    assert rows[0]["sha256"] == exported_int8["tflite"]["sha256"]
    assert rows[1]["status"] == "ok"


def test_a_hanging_worker_times_out(exported_int8, monkeypatch):
    import edgecnn.harness as harness

    monkeypatch.setattr(harness, "worker_command", lambda job: [sys.executable, "-c", "import time; time.sleep(60)"])
    row = harness.benchmark_artifact(exported_int8["tflite"]["path"], BenchmarkSettings(runs=1), timeout=1)
    assert row["status"] == "failed" and row["error"].startswith("timed out after 1 s")


def test_onnxruntime_cannot_run_tflite(exported_int8):
    result = runner.invoke(app, ["benchmark", exported_int8["tflite"]["path"], "--runtime", "onnxruntime", *FAST])
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert "runtime `onnxruntime` cannot run .tflite files" in line


def test_cuda_provider_on_a_cpu_only_machine(exported_int8):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has ONNX Runtime's CUDA provider")
    result = runner.invoke(app, ["benchmark", exported_int8["onnx"]["path"], "--provider", "cuda", *FAST])
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert "CUDAExecutionProvider" in line and "pip install onnxruntime-gpu" in line


def test_a_runtime_that_is_not_installed_names_its_package(exported_int8):
    import importlib.util

    if importlib.util.find_spec("tflite_runtime") is not None:
        pytest.skip("tflite-runtime is installed here")
    result = runner.invoke(app, ["benchmark", exported_int8["tflite"]["path"], "--runtime", "tflite-runtime", *FAST])
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert "pip install tflite-runtime" in line


def test_out_appends_rows(exported_int8, tmp_path):
    out = tmp_path / "results" / "bench.jsonl"
    for _ in range(2):
        result = runner.invoke(
            app, ["benchmark", exported_int8["tflite"]["path"], "--out", str(out), "--runs", "2", "--min-secs", "0"]
        )
        assert result.exit_code == 0, result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert all(r["schema"] == BENCHMARK_SCHEMA and r["status"] == "ok" for r in rows)
    assert rows[0]["sha256"] == rows[1]["sha256"]


def test_batch_2_on_the_onnx_model(exported_int8):
    result = runner.invoke(app, ["benchmark", exported_int8["onnx"]["path"], "--batch", "2", "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    (row,) = _rows(result)
    assert row["batch"] == 2 and row["inputs"][0]["shape"] == [2, 32, 32, 3]
    _check_latency(row)


def test_batch_refused_by_a_fixed_batch_model(exported_int8, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(exported_int8["onnx"]["path"])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    fixed = tmp_path / "fixed-batch.onnx"
    onnx.save(model, str(fixed))
    row = benchmark_artifact(fixed, BenchmarkSettings(batch=2, runs=2, min_secs=0))
    assert row["status"] == "failed"
    assert row["error"].startswith("batch 2 does not fit this model (fed (2, 32, 32, 3))")


def test_real_images_with_data(exported_int8):
    tflite, onnx = _paths(exported_int8)
    result = runner.invoke(app, ["benchmark", tflite, onnx, "--data", str(DATA), "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    for row in _rows(result):
        assert row["status"] == "ok"
        assert row["settings"]["data"] == str(DATA) and row["settings"]["samples"] == 16
        record = row["inputs"][0]
        assert record["shape"] == [1, 32, 32, 3] and record["batches"] == 16
        assert "16 images" in record["values"] and "`tf`" in record["values"]
        _check_latency(row)


def test_data_without_manifest_needs_preprocess(exported_int8, tmp_path):
    copy = tmp_path / "theirs.tflite"
    shutil.copy(exported_int8["tflite"]["path"], copy)
    settings = BenchmarkSettings(runs=2, min_secs=0, data=str(DATA), samples=4)
    row = benchmark_artifact(copy, settings)
    assert row["status"] == "failed" and "--preprocess" in row["error"]
    row = benchmark_artifact(
        copy, BenchmarkSettings(runs=2, min_secs=0, data=str(DATA), samples=4, preprocess="tf", batch=3)
    )
    assert row["status"] == "ok", row["error"]
    assert row["inputs"][0]["shape"] == [3, 32, 32, 3] and row["inputs"][0]["batches"] == 2


def test_data_whose_shape_does_not_fit(exported_int8, tmp_path):
    wrong = tmp_path / "tensors.npy"
    np.save(wrong, np.zeros((4, 28, 28, 1), np.float32))
    right = tmp_path / "right.npy"
    np.save(right, np.zeros((4, 32, 32, 3), np.float32))
    four_channels = tmp_path / "rgba.npz"
    np.savez(four_channels, x=np.zeros((2, 32, 32, 4), np.uint8))
    tflite = exported_int8["tflite"]["path"]
    result = runner.invoke(app, ["benchmark", tflite, "--data", str(wrong), "--json", *FAST])
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert "holds arrays of shape (4, 28, 28, 1)" in line and "takes (1, 32, 32, 3)" in line
    row = benchmark_artifact(tflite, BenchmarkSettings(runs=2, min_secs=0, data=str(right)))
    assert row["status"] == "ok" and "right.npy" in row["inputs"][0]["values"]
    row = benchmark_artifact(tflite, BenchmarkSettings(runs=2, min_secs=0, data=str(four_channels)))
    assert row["status"] == "failed" and "1 or 3 channels" in row["error"]


def test_onnx_op_types_without_the_onnx_package(exported_int8):
    onnx = pytest.importorskip("onnx")
    from edgecnn.runtime.onnx_ops import onnx_op_types

    path = exported_int8["onnx"]["path"]
    assert onnx_op_types(path) == [node.op_type for node in onnx.load(path).graph.node]


_BLOCKER = """
import atexit, json, os, sys
HEAVY = ("tensorflow", "tf_keras", "keras", "tf2onnx", "tensorflow_model_optimization")
attempts = []

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            attempts.append(name)
            raise ImportError(f"{name} is blocked: the benchmark path must not import TensorFlow")
        return None

sys.meta_path.insert(0, _Block())

@atexit.register
def _report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    with open(os.path.join(os.environ["EDGECNN_IMPORT_LOG"], f"{os.getpid()}.json"), "w") as out:
        json.dump({"argv": sys.argv, "attempts": attempts, "loaded": loaded}, out)
"""


def test_benchmarking_never_imports_tensorflow(exported_int8, tmp_path):
    """The whole command, parent and workers, with TensorFlow made unimportable (a Pi without it)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCKER)
    log = tmp_path / "imports"
    log.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "EDGECNN_IMPORT_LOG": str(log),
    }
    tflite, onnx = _paths(exported_int8)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecnn",
            "benchmark",
            tflite,
            onnx,
            "--data",
            str(DATA),
            "--samples",
            "2",
            "--json",
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in json.loads(proc.stdout)] == ["ok", "ok"]
    reports = [json.loads(p.read_text()) for p in log.iterdir()]
    assert len(reports) == 3  # the command and one worker per artifact
    assert sorted(Path(r["argv"][0]).name for r in reports) == ["__main__.py", "worker.py", "worker.py"]
    for report in reports:
        assert report["attempts"] == [] and report["loaded"] == [], report


@pytest.mark.slow
def test_keras_float_reference(tmp_path):
    """A saved Keras model benchmarks as the float reference, on TensorFlow's device."""
    from edgecnn.models import create_model

    path = tmp_path / "lenet.keras"
    create_model("lenet5").save(path)
    result = runner.invoke(app, ["benchmark", str(path), "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    (row,) = _rows(result)
    assert row["status"] == "ok" and row["format"] == "keras"
    assert row["runtime"] == "tensorflow" and row["provider"] in ("cpu", "gpu")
    assert row["latency_ms"]["count"] >= 3
    assert "Conv2D" in row["ops"]
