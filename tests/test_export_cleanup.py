"""A failed, interrupted or concurrent export leaves nothing half-done in `--out`.

- option conflicts are refused before any artifact is written;
- a failure in the second format publishes neither (and removes an `--out` it created);
- SIGTERM, like Ctrl-C, removes the `.partial` staging folder;
- stale `.partial` folders of dead exports are swept by the next export, live ones are not;
- two exports of the same artifact into the same `--out`: the second says so in one line;
- warnings of a failed export are not printed before its error;
- the offline ImageNet fallback is one short warning, with no download chatter.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _env() -> dict:
    env = dict(os.environ, EDGECNN_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _wait_for(path: Path, proc: subprocess.Popen, what: str) -> None:
    """Wait (no time limit of ours; pytest's own applies) until `path` exists or `proc` ends."""
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{what} ended first: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)


def test_io_conflict_with_onnx_is_refused_before_the_tflite_artifact(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(
        app, ["export", "lenet5", "--int8", "--io", "uint8", "--format", "all", "--weights", "none", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "--io uint8 applies to --format tflite only" in one_error_line(result)
    assert _leftovers(out) == []


def test_failure_in_the_second_format_publishes_neither(tmp_path, monkeypatch):
    """TFLite converted and checked, then ONNX fails: no TFLite folder either, and the `--out`
    the export created (with its parent) is gone; the warning it had is not printed."""
    import converters.onnx

    def broken(model, **kwargs):
        from edgecnn.errors import EdgecnnError

        raise EdgecnnError("tf2onnx says no")

    monkeypatch.setattr(converters.onnx, "keras_to_onnx", broken)
    out = tmp_path / "new" / "out"
    # --weights auto on LeNet-5 warns "Keras publishes no ImageNet weights"; the failure comes after.
    result = runner.invoke(app, ["export", "lenet5", "--format", "all", "--out", str(out)])
    assert result.exit_code == 1
    assert one_error_line(result) == "error: tf2onnx says no"
    assert not (tmp_path / "new").exists()


def test_successful_export_prints_its_warning_and_leaves_no_lock_or_staging(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "lenet5", "--format", "all", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: Keras publishes no ImageNet weights for lenet5; exporting random weights"
    ]
    assert _leftovers(out) == ["lenet5-float32", "lenet5-float32-onnx"]
    # Again into the same place: replaced whole, still nothing else.
    again = runner.invoke(app, ["export", "lenet5", "--weights", "none", "--out", str(out)])
    assert again.exit_code == 0, again.stderr
    assert _leftovers(out) == ["lenet5-float32", "lenet5-float32-onnx"]


def test_stale_partial_folders_are_swept_live_ones_kept(tmp_path):
    from edgecnn.export import _acquire_lock, _release_lock

    out = tmp_path / "out"
    out.mkdir()
    stale_same = out / ".lenet5-float32.k2j3h4.partial"  # an interrupted export of the same artifact
    stale_other = out / ".mobilenet_v2-a0.35-int8.zz91ab.partial"  # of another one, dead too
    live = out / ".vgg16-int8.q8w7e6.partial"  # another export, still running (holds its lock)
    for folder in (stale_same, stale_other, live):
        folder.mkdir()
        (folder / "half-written.tflite").write_bytes(b"\0" * 10)
    lock = out / ".vgg16-int8.lock"
    fd = _acquire_lock(lock)
    assert fd is not None
    try:
        result = runner.invoke(app, ["export", "lenet5", "--weights", "none", "--out", str(out)])
        assert result.exit_code == 0, result.stderr
        assert _leftovers(out) == [".vgg16-int8.lock", ".vgg16-int8.q8w7e6.partial", "lenet5-float32"]
    finally:
        _release_lock(lock, fd)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edgecnn.export import _OutFolder
    with _OutFolder(sys.argv[1], [sys.argv[2]]):
        Path(sys.argv[3]).write_text("held")
        time.sleep(600)
""")


def test_a_second_export_of_the_same_artifact_says_so_in_one_line(tmp_path):
    out = tmp_path / "out"
    marker = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), "lenet5-float32", str(marker)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, holder, "the first export")
        second = subprocess.run(
            [sys.executable, "-m", "edgecnn", "export", "lenet5", "--weights", "none", "--out", str(out)],
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert second.returncode == 1
        lines = second.stderr.splitlines()
        assert lines == [
            f"error: another export (pid {holder.pid}) is writing lenet5-float32 into {out}; "
            "wait for it to finish or choose another --out"
        ], second.stderr
        # Another artifact into the same --out is not held up.
        other = subprocess.run(
            [sys.executable, "-m", "edgecnn", "export", "lenet5", "--float16", "--weights", "none", "--out", str(out)],
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert other.returncode == 0, other.stderr
    finally:
        holder.terminate()
        holder.wait()
    assert "lenet5-float16" in _leftovers(out) and "lenet5-float32" not in _leftovers(out)
    # The holder died without releasing: its lock is free, the next export goes through.
    third = subprocess.run(
        [sys.executable, "-m", "edgecnn", "export", "lenet5", "--weights", "none", "--out", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert third.returncode == 0, third.stderr
    assert [n for n in _leftovers(out) if n.endswith(".partial")] == []


SLOW_STAGING = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import edgecnn.export.record as export_module
    from edgecnn.cli import main

    marker, out = sys.argv[1], sys.argv[2]

    def stuck(folder, manifest):  # the artifact is in the staging folder; wait to be signalled
        Path(marker).write_text(str(folder))
        time.sleep(600)

    export_module.write_manifest = stuck
    sys.argv = ["edgecnn", "export", "lenet5", "--weights", "none", "--out", out]
    main()
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_staging_leaves_no_partial_folder(tmp_path, signum):
    out = tmp_path / "new" / "out"
    marker = tmp_path / "staging"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STAGING, str(marker), str(out)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A suite started in the background (`pytest &` in a script) runs with SIGINT ignored, and a
        # child inherits that: Python then never raises KeyboardInterrupt. As from a terminal here.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for(marker, proc, "the export")
        staging = Path(marker.read_text())
        assert staging.name.endswith(".partial") and staging.is_dir()
        proc.send_signal(signum)
        _, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (143 if signum == signal.SIGTERM else 130), stderr
    assert "Traceback" not in stderr
    assert not staging.exists()
    assert not (tmp_path / "new").exists()  # the --out it created is gone too


def test_offline_imagenet_fallback_is_one_short_warning(monkeypatch, capfd):
    """No network in tests: Keras's download is replaced by one that fails as offline does."""
    from edgecnn._tf import import_keras
    from edgecnn.export import ExportRequest, _load_model

    keras = import_keras()

    def offline_get_file(fname, origin, **kwargs):
        print(f"Downloading data from {origin}")  # what Keras prints before it fails
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.delenv("EDGECNN_OFFLINE", raising=False)
    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)

    class Collect:
        def __init__(self):
            self.warnings = []

        def start(self, label, total=None):
            pass

        def warn(self, message):
            self.warnings.append(message)

    progress = Collect()
    request = ExportRequest(model="mobilenet_v2", input_size=96, alpha=0.35)
    model, facts = _load_model(request, progress)
    assert facts["weights"] == "random"
    assert progress.warnings == ["no ImageNet weights for mobilenet_v2 (offline); exporting random weights"]
    captured = capfd.readouterr()
    assert "Downloading" not in captured.out + captured.err and "https://" not in captured.out + captured.err

    monkeypatch.setenv("EDGECNN_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "edgecnn-no-keras-cache"))
    progress = Collect()
    _load_model(ExportRequest(model="mobilenet_v2", input_size=96, alpha=0.35), progress)
    assert progress.warnings == [
        "no ImageNet weights for mobilenet_v2 (not cached, EDGECNN_OFFLINE is set); exporting random weights"
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["prune", "lenet5", "--sparsity", "0.5"],
        ["cluster", "lenet5", "--clusters", "4"],
        ["train", "lenet5"],
    ],
)
def test_a_failed_training_stage_leaves_no_out_folder(tmp_path, command):
    """The data is read (and refused: labels beyond --classes) after the options are checked:
    the folder of --out is created only when the model is saved, so nothing is left."""
    data = REPO / "tests" / "data" / "fashion-mnist-test-200.npz"
    out = tmp_path / "new" / "deeper" / "model.keras"
    result = runner.invoke(app, [*command, "--dataset", str(data), "--classes", "3", "--out", str(out)])
    assert result.exit_code == 2
    assert "labels outside the class range" in one_error_line(result)
    assert not (tmp_path / "new").exists()
