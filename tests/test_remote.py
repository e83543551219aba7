"""`edgecnn benchmark --remote`: against an sshd that this test starts on 127.0.0.1.

The sshd (Debian: openssh-server) listens on a free port with a host key and an
authorized_keys made here; the "remote" is this machine, so it runs this Python
(`--remote-python sys.executable`). Without sshd, the tests that need it skip.
"""

import getpass
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgecnn.cli.benchmark  # noqa: F401 (registers `benchmark` on the app, as edgecnn.cli does)
from edgecnn.cli import app
from edgecnn.harness import BenchmarkSettings
from edgecnn.harness.remote import remote_arguments

runner = CliRunner()
FAST = ["--runs", "3", "--min-secs", "0", "--warmup", "1"]
DATA = Path(__file__).parent / "data" / "imagenet-16"


def _sshd_binary():
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    binary = _sshd_binary()
    missing = [t for t in ("ssh", "scp", "ssh-keygen") if shutil.which(t) is None]
    if binary is None or missing:
        pytest.skip("sshd/ssh/scp not installed (apt-get install openssh-server openssh-client)")
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {folder / 'host_key'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"PidFile {folder / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",  # scp speaks SFTP since OpenSSH 9
                "LogLevel ERROR",
                "",
            ]
        )
    )
    log = open(folder / "sshd.log", "w")
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd did not start: {(folder / 'sshd.log').read_text().strip()[-300:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("sshd did not listen within 15 s")
    options = [
        "--remote-port",
        str(port),
        "--ssh-option",
        f"IdentityFile={folder / 'client_key'}",
        "--ssh-option",
        "StrictHostKeyChecking=no",
        "--ssh-option",
        "UserKnownHostsFile=/dev/null",
        "--remote-python",
        sys.executable,
    ]
    yield {"target": f"{getpass.getuser()}@127.0.0.1", "options": options, "port": port}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _error_lines(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert all(line.startswith("error: ") for line in lines), result.stderr
    return lines


def _leftovers():
    return set(glob.glob("/tmp/edgecnn-bench.*"))


def test_remote_rows_come_back_and_the_folder_goes(sshd, exported_int8):
    before = _leftovers()
    tflite, onnx = exported_int8["tflite"]["path"], exported_int8["onnx"]["path"]
    result = runner.invoke(
        app,
        ["benchmark", tflite, onnx, "--remote", sshd["target"], *sshd["options"], "--threads", "1", "--json", *FAST],
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for row, manifest in zip(rows, (exported_int8["tflite"], exported_int8["onnx"])):
        assert row["remote"] == sshd["target"]
        assert row["artifact"] == manifest["path"]  # the local file, not the deleted remote copy
        assert row["sha256"] == manifest["sha256"]
        assert row["model"] == "mobilenet_v2" and row["quantization"] == "int8"  # the manifest went along
        assert row["threads"] == 1 and row["settings"]["runs"] == 3
        assert row["latency_ms"]["count"] >= 3 and row["host"]["cpu"]
    assert _leftovers() == before


def test_remote_table_with_data_and_a_missing_file(sshd, exported_int8, tmp_path):
    missing = tmp_path / "missing.tflite"
    result = runner.invoke(
        app,
        [
            "benchmark",
            exported_int8["tflite"]["path"],
            str(missing),
            "--remote",
            sshd["target"],
            *sshd["options"],
            "--data",
            str(DATA),
            "--samples",
            "2",
            *FAST,
        ],
    )
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert str(missing) in line and "no such file" in line
    assert f"@ {sshd['target']}" in result.stdout and "p50 ms" in result.stdout


def test_remote_without_edgecnn_there(sshd, exported_int8):
    options = [o for o in sshd["options"] if o not in ("--remote-python", sys.executable)]
    result = runner.invoke(
        app,
        [
            "benchmark",
            exported_int8["tflite"]["path"],
            "--remote",
            sshd["target"],
            *options,
            "--remote-python",
            "/nonexistent/python3",
            *FAST,
        ],
    )
    assert result.exit_code == 1
    (line,) = _error_lines(result)
    assert "edgecnn benchmark on" in line and "--remote-python" in line


def test_unreachable_host_one_line_per_artifact(exported_int8):
    if shutil.which("ssh") is None:
        pytest.skip("ssh not installed")
    port = _free_port()  # nothing listens there
    result = runner.invoke(
        app,
        [
            "benchmark",
            exported_int8["tflite"]["path"],
            exported_int8["onnx"]["path"],
            "--remote",
            "nobody@127.0.0.1",
            "--remote-port",
            str(port),
            "--json",
            *FAST,
        ],
    )
    assert result.exit_code == 1
    lines = _error_lines(result)
    assert len(lines) == 2
    assert all("cannot reach nobody@127.0.0.1" in line for line in lines)
    rows = json.loads(result.stdout)
    assert all(r["status"] == "failed" and r["remote"] == "nobody@127.0.0.1" for r in rows)
    assert rows[0]["sha256"] == exported_int8["tflite"]["sha256"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--remote", "pi@host:/tmp"], "--remote takes"),
        (["--remote", "pi@host", "--ssh-option", "BatchMode"], "Name=value"),
        (["--remote", "pi@host", "--remote-port", "70000"], "--remote-port"),
        (["--ssh-option", "Port=22"], "need --remote"),
    ],
)
def test_bad_remote_options_exit_2(args, words):
    result = runner.invoke(app, ["benchmark", "a.tflite", *args])
    assert result.exit_code == 2
    (line,) = _error_lines(result)
    assert words in line


def test_remote_arguments_give_back_the_same_settings(monkeypatch):
    """What runs on the other side parses back to the settings given here."""
    settings = BenchmarkSettings(
        runtime="onnxruntime",
        threads=4,
        provider="cpu",
        warmup=3,
        runs=17,
        min_secs=0.25,
        max_secs=30,
        batch=2,
        data="default",
        preprocess="caffe",
        samples=5,
        seed=9,
    )
    seen = {}

    def fake(artifacts, s, **kw):
        from edgecnn.harness import empty_row

        seen["s"] = s
        return [empty_row(a, s) for a in artifacts]

    monkeypatch.setattr("edgecnn.harness.benchmark_many", fake)
    result = runner.invoke(app, ["benchmark", "x.onnx", *remote_arguments(settings, settings.data)])
    assert result.exit_code == 0, result.output
    assert seen["s"] == settings
