"""benchmarks/arm/check.py refuses bad input in one line, before building anything.

The check itself (debootstrap, qemu, minutes to tens of minutes) is not run here: see
benchmarks/arm/README.md. These tests point the script at fake tool folders
(EDGECNN_ARM_TOOL_PATH) and a fake user id (EDGECNN_ARM_EUID), so they pass as root or not,
with or without qemu-user-static and debootstrap installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "arm" / "check.py"


def run_check(*args, tool_dir: Path, euid: int = 0, cache: Path | None = None):
    env = dict(os.environ, EDGECNN_ARM_TOOL_PATH=str(tool_dir), EDGECNN_ARM_EUID=str(euid))
    if cache is not None:
        env["EDGECNN_ARM_CACHE"] = str(cache)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stderr.strip().splitlines()


ALL_TOOLS = ("qemu-aarch64-static", "qemu-x86_64-static", "debootstrap", "chroot")


def fake_tools(folder: Path, *names: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text("#!/bin/sh\necho 'fake tool: must not run' >&2\nexit 99\n")
        tool.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    "present, missing",
    [
        ((), "qemu-aarch64-static and debootstrap not found"),
        (("debootstrap", "chroot"), "qemu-aarch64-static not found"),
        (("qemu-aarch64-static", "chroot"), "debootstrap not found"),
    ],
)
def test_missing_tools_say_what_to_install(tmp_path, present, missing):
    code, lines = run_check(tool_dir=fake_tools(tmp_path / "bin", *present), cache=tmp_path / "cache")
    assert code == 2
    assert lines == [f"error: {missing}; install with: apt-get install qemu-user-static debootstrap"]
    assert not (tmp_path / "cache").exists()


def test_missing_tools_come_before_root(tmp_path):
    code, lines = run_check(tool_dir=fake_tools(tmp_path / "bin"), euid=1000)
    assert code == 2
    assert len(lines) == 1 and "install with: apt-get install" in lines[0]


def test_not_root_says_how_to_run_it(tmp_path):
    tools = fake_tools(tmp_path / "bin", *ALL_TOOLS)
    code, lines = run_check("--limit", "8", tool_dir=tools, euid=1000, cache=tmp_path / "cache")
    assert code == 2
    assert lines == [
        "error: run as root (debootstrap and chroot need it): sudo python3 benchmarks/arm/check.py --limit 8"
    ]
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--limit", "0"), "error: --limit must be at least 1. Received 0"),
        (("--threads", "0"), "error: --threads must be at least 1. Received 0"),
        (("--cpu", "cortex-a99"), "error: --cpu cortex-a99: use qemu CPU names"),
        (("--data", "tests"), "error: --data tests: not a folder with a dataset.txt"),
        (("--model", "no-such.keras"), "error: --model no-such.keras: no such file (a trained .keras model)"),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, message):
    tools = fake_tools(tmp_path / "bin", *ALL_TOOLS)
    code, lines = run_check(*args, tool_dir=tools, euid=1000)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(message)


def test_the_leg_without_vnni_needs_qemu_x86_64(tmp_path):
    """x86 without VNNI runs under qemu-x86_64-static -cpu Haswell (same package as qemu-aarch64-static);
    without it the check says so before building anything, and --x86-cpu none skips that leg."""
    tools = fake_tools(tmp_path / "bin", "qemu-aarch64-static", "debootstrap", "chroot")
    code, lines = run_check(tool_dir=tools, euid=1000, cache=tmp_path / "cache")
    assert code == 2
    assert lines == [
        "error: qemu-x86_64-static not found (the leg without VNNI, --x86-cpu Haswell); install "
        "with: apt-get install qemu-user-static debootstrap, or --x86-cpu none"
    ]
    code, lines = run_check("--x86-cpu", "none", tool_dir=tools, euid=1000, cache=tmp_path / "cache")
    assert code == 2
    assert lines == [
        "error: run as root (debootstrap and chroot need it): sudo python3 benchmarks/arm/check.py --x86-cpu none"
    ]
    assert not (tmp_path / "cache").exists()
