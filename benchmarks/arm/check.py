#!/usr/bin/env python3
"""Prove the Raspberry Pi path on real aarch64 binaries under qemu: see benchmarks/arm/README.md.

    sudo python3 benchmarks/arm/check.py [--limit 256] [--cpu cortex-a72,cortex-a76] [--x86-cpu Haswell]
        [--model TRAINED.keras] [--data DIR]

1. preflight: qemu-aarch64-static, debootstrap and chroot present, root, binfmt_misc able to
   run aarch64 ELF files (mounted and registered here if it is not), the export extra on x86;
2. the root: a Debian bookworm arm64 minbase (python3, venv, pip) built by debootstrap into
   CACHE/root, reused when present (`--rebuild` makes a new one);
3. the install: a wheel of this tree, built on x86, installed with no extra into a venv in the
   root (`pip install edgecnn-*.whl`): pip takes the aarch64 wheels of every dependency;
4. x86: a MobileNetV2 0.35/32 trained on Fashion-MNIST (`edgecnn train`, or --model), an int8
   TFLite and an int8 ONNX artifact of it by `edgecnn export`; the first --limit Fashion-MNIST
   test images as PNG files; predictions and `edgecnn evaluate --json` on x86; then the same
   predictions on x86 without VNNI (the host Python under qemu-x86_64-static -cpu Haswell);
5. aarch64, once per emulated CPU (QEMU_CPU: cortex-a72 is a Pi 4, cortex-a76 a Pi 5): the
   same predictions (images decoded there, and x86's float inputs), `edgecnn evaluate --json`
   and `edgecnn benchmark --json --runs 3 --min-secs 0 --threads 4`;
6. the verdict: on every leg the same top-1 on every image and every output within
   TOLERANCE_STEPS steps of the output's quantization scale of x86's, the same evaluate rows, a
   complete benchmark JSON; written to benchmarks/arm/result.json and RESULT.md. Latency under
   emulation is recorded as such and means nothing on a Pi.

Exit code 0: passed; 1: a check failed or a step broke (one line, and the log's path);
2: bad input or a missing prerequisite (one line saying what to do).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: the x86 side imports this tree
    sys.path.append(str(REPO))

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
INCLUDE = "python3,python3-venv,python3-pip,ca-certificates"
VENV = "/opt/edgecnn-venv"  # inside the root
WORK = "/tmp/edgecnn-arm-check"  # inside the root; the x86 side sees it as ROOT + WORK
ROOT_RECORD = "etc/edgecnn-arm-root.json"
# The CPUs the check can emulate (QEMU_CPU), with the /proc/cpuinfo a board with that core shows
# (the Features line of 64-bit Raspberry Pi OS, MIDR fields). Without an Arm /proc/cpuinfo the
# cpuinfo library inside XNNPACK and ONNX Runtime crashes: qemu 7.2 user mode shows programs the
# host's x86 one. The Hardware line names the emulation, so `host.cpu` of a benchmark row says it.
CPU_MODELS = {
    "cortex-a53": {
        "board": "Raspberry Pi 3 / Zero 2 W",
        "variant": "0x0",
        "part": "0xd03",
        "revision": 4,
        "features": "fp asimd evtstrm crc32 cpuid",
    },
    "cortex-a72": {
        "board": "Raspberry Pi 4",
        "variant": "0x0",
        "part": "0xd08",
        "revision": 3,
        "features": "fp asimd evtstrm crc32 cpuid",
    },
    "cortex-a76": {
        "board": "Raspberry Pi 5",
        "variant": "0x4",
        "part": "0xd0b",
        "revision": 1,
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
        "asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
    },
}
# The model: a MobileNetV2 0.35 at 32x32 (depthwise convolutions, residual adds, the Pi path's
# operators) trained on Fashion-MNIST here, so that its outputs carry margins: a random-weight
# model's top-1 flips on a one-step rounding difference between two correct int8 kernels.
TRAIN = (
    "mobilenet_v2",
    "--dataset",
    "fashion-mnist",
    "--epochs",
    "3",
    "--input-size",
    "32",
    "--alpha",
    "0.35",
    "--batch-size",
    "128",
    "--lr",
    "3e-3",
    "--lr-schedule",
    "cosine",
    "--limit",
    "20000",
    "--val-limit",
    "2000",
)
EXPORT = ("--int8", "--format", "all", "--calib", "fashion-mnist")
# The verdict's tolerance: the same top-1 on every image, and every output within this many steps
# of the output's own quantization scale of x86's. Two correct int8 kernels may round one
# requantization differently (one step), which a later layer can carry one step further.
TOLERANCE_STEPS = 2
# x86 without VNNI: ONNX Runtime's u8s8 kernels there (AVX2, VPMADDUBSW) add pairs of products in
# int16 and saturate with full-range weights. qemu user mode, host Python, no chroot.
X86_EMULATOR = "qemu-x86_64-static"
X86_CPU = "Haswell"
EMULATED = "emulated - meaningless as a Pi figure"
INSTALL_TOOLS = "install with: apt-get install qemu-user-static debootstrap"
BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")

# Test hooks (tests/test_arm_check.py): where to look for the tools, and the user id to assume.
TOOL_PATH_ENV = "EDGECNN_ARM_TOOL_PATH"
EUID_ENV = "EDGECNN_ARM_EUID"


class Stop(Exception):
    """One line for the user, and the exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# -- progress and subprocesses --------------------------------------------------------------
class Log:
    def __init__(self):
        self.start = time.monotonic()
        self.file = None

    def open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", buffering=1)
        self.path = path

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        line = f"[arm {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {message}"
        print(line, file=sys.stderr, flush=True)
        if self.file:
            self.file.write(line + "\n")

    def run(self, argv, *, what: str, env=None, cwd=None, timeout: float = 3600, capture: bool = False) -> str:
        """Run `argv`; its stderr (and stdout unless captured) go to the log. Stop on failure."""
        if self.file:
            self.file.write(f"$ {shlex.join(map(str, argv))}\n")
            self.file.flush()
        sink = self.file or subprocess.DEVNULL
        try:
            done = subprocess.run(
                list(map(str, argv)),
                env=env,
                cwd=cwd,
                timeout=timeout,
                stdout=subprocess.PIPE if capture else sink,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise Stop(f"{what}: timed out after {timeout:.0f} s (log: {self.where()})") from None
        if self.file and done.stderr:
            self.file.write(done.stderr if done.stderr.endswith("\n") else done.stderr + "\n")
        if done.returncode != 0:
            lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
            if done.returncode < 0:
                reason = f"killed by {signal.Signals(-done.returncode).name}"
            else:
                reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
            raise Stop(f"{what} failed: {reason} (log: {self.where()})")
        return done.stdout if capture else ""

    def where(self) -> str:
        return str(self.path) if self.file else "none"


LOG = Log()


def _timed(record: dict, key: str):
    """A context manager that stores the seconds its block took in record[key]."""

    @contextlib.contextmanager
    def block():
        start = time.monotonic()
        try:
            yield
        finally:
            record[key] = round(time.monotonic() - start, 1)

    return block()


# -- preflight ------------------------------------------------------------------------------
def find_tool(name: str) -> str | None:
    path = os.environ.get(TOOL_PATH_ENV)
    if path is None:  # sudo's PATH and a user's may lack the sbin folders debootstrap lives in
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return shutil.which(name, path=path)


def preflight(argv_for_sudo: list[str], x86_cpu: str | None = X86_CPU) -> dict:
    tools = {name: find_tool(name) for name in ("qemu-aarch64-static", "debootstrap", "chroot")}
    missing = [name for name in ("qemu-aarch64-static", "debootstrap") if not tools[name]]
    if missing:
        raise Stop(f"{' and '.join(missing)} not found; {INSTALL_TOOLS}", 2)
    tools[X86_EMULATOR] = find_tool(X86_EMULATOR)
    if x86_cpu and not tools[X86_EMULATOR]:
        raise Stop(
            f"{X86_EMULATOR} not found (the leg without VNNI, --x86-cpu {x86_cpu}); {INSTALL_TOOLS}, or --x86-cpu none",
            2,
        )
    if not tools["chroot"]:
        raise Stop("chroot not found; install with: apt-get install coreutils", 2)
    euid = int(os.environ.get(EUID_ENV, os.geteuid()))
    if euid != 0:
        command = shlex.join(["sudo", "python3", os.path.relpath(__file__), *argv_for_sudo])
        raise Stop(f"run as root (debootstrap and chroot need it): {command}", 2)
    return tools


def enable_binfmt() -> str:
    """Make the kernel run aarch64 ELF files through qemu; say how it is registered."""
    entry = BINFMT_MISC / "qemu-aarch64"
    if not (BINFMT_MISC / "register").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_MISC)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise Stop(
                "binfmt_misc is not available (mount -t binfmt_misc binfmt_misc "
                f"{BINFMT_MISC} failed: {done.stderr.strip()}); in a container, run it "
                "privileged or register qemu-aarch64 on the host",
                2,
            )
    if not entry.exists():
        if shutil.which("update-binfmts"):
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
        if not entry.exists() and BINFMT_CONF.exists():
            line = BINFMT_CONF.read_text().strip()
            with contextlib.suppress(OSError):
                (BINFMT_MISC / "register").write_text(line)
    if not entry.exists():
        raise Stop(
            "no qemu-aarch64 entry in binfmt_misc: reinstall qemu-user-static (and "
            "binfmt-support), or run update-binfmts --enable qemu-aarch64",
            2,
        )
    text = entry.read_text()
    if not text.startswith("enabled"):
        with contextlib.suppress(OSError):
            entry.write_text("1")
        text = entry.read_text()
        if not text.startswith("enabled"):
            raise Stop("binfmt_misc's qemu-aarch64 entry is disabled; run update-binfmts --enable qemu-aarch64", 2)
    flags = re.search(r"^flags:\s*(\S*)", text, re.MULTILINE)
    if flags is None or "F" not in flags.group(1):
        raise Stop(
            "binfmt_misc's qemu-aarch64 entry lacks the F flag, so qemu is not found inside "
            "a chroot; re-register it from /usr/lib/binfmt.d/qemu-aarch64.conf",
            2,
        )
    interpreter = re.search(r"^interpreter\s+(\S+)", text, re.MULTILINE)
    return f"{interpreter.group(1) if interpreter else '?'} (flags {flags.group(1)})"


# -- the root -------------------------------------------------------------------------------
def mounts_under(path: Path) -> list[Path]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix) or point == prefix.rstrip("/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(str(p)), reverse=True)


def unmount_all(path: Path) -> None:
    for point in mounts_under(path):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount (a bound /dev inside a root would be emptied)."""
    if not path.exists():
        return
    unmount_all(path)
    if mounts_under(path):
        raise Stop(f"cannot remove {path}: still mounted there ({mounts_under(path)[0]})")
    shutil.rmtree(path)


def build_root(cache: Path, tools: dict, mirror: str, record: dict, *, rebuild: bool = False) -> Path:
    root = cache / "root"
    marker = root / ROOT_RECORD
    if rebuild:
        LOG.say(f"root: --rebuild, removing {root}")
        remove_tree(root)
    if marker.is_file() and (root / "usr/bin/python3").exists():
        record["root"] = {"state": "cached", **json.loads(marker.read_text())}
        LOG.say(f"root: cached at {root} (built {record['root'].get('built')})")
        return root
    partial = cache / "root.partial"
    remove_tree(partial)
    remove_tree(root)
    LOG.say(f"root: debootstrap {SUITE} arm64 minbase into {partial} (10-30 minutes under qemu)")
    start = time.monotonic()
    LOG.run(
        [tools["debootstrap"], "--arch=arm64", "--variant=minbase", f"--include={INCLUDE}", SUITE, partial, mirror],
        what="debootstrap",
        timeout=3 * 3600,
    )
    unmount_all(partial)
    info = {
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "suite": SUITE,
        "mirror": mirror,
        "include": INCLUDE,
        "variant": "minbase",
        "debootstrap": _package_version("debootstrap"),
        "debootstrap_seconds": round(time.monotonic() - start, 1),
    }
    (partial / ROOT_RECORD).write_text(json.dumps(info, indent=2) + "\n")
    partial.rename(root)
    record["root"] = {"state": "built", **info}
    LOG.say(f"root: built in {info['debootstrap_seconds']:.0f} s")
    return root


def _package_version(name: str) -> str | None:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


@contextlib.contextmanager
def mounted(root: Path):
    """/proc, /dev and /sys inside the root, and the host's resolv.conf for pip; undone after."""
    unmount_all(root)  # a killed run may have left some
    points = []
    try:
        for source, target, args in (
            ("proc", "proc", ["-t", "proc"]),
            ("/dev", "dev", ["--bind"]),
            ("/sys", "sys", ["--bind"]),
        ):
            point = root / target
            point.mkdir(exist_ok=True)
            done = subprocess.run(["mount", *args, source, str(point)], capture_output=True, text=True)
            if done.returncode != 0:
                raise Stop(f"cannot mount {source} on {point}: {done.stderr.strip()}")
            points.append(point)
        resolv = root / "etc/resolv.conf"
        with contextlib.suppress(OSError):
            if resolv.is_symlink():
                resolv.unlink()
            shutil.copyfile("/etc/resolv.conf", resolv)
        carry_network_settings(root)
        yield root
    finally:
        for point in reversed(points):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)


def cpuinfo_text(cpu: str) -> str:
    model = CPU_MODELS[cpu]
    block = (
        f"BogoMIPS\t: 108.00\nFeatures\t: {model['features']}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: {model['variant']}\nCPU part\t: {model['part']}\n"
        f"CPU revision\t: {model['revision']}\n"
    )
    text = "".join(f"processor\t: {i}\n{block}\n" for i in range(os.cpu_count() or 1))
    return text + f"Hardware\t: QEMU user-mode emulation of {cpu}, not a board\n"


@contextlib.contextmanager
def cpu_view(root: Path, cache: Path, cpu: str):
    """An Arm /proc/cpuinfo for `cpu` over the root's (x86) one while the block runs."""
    source = cache / f"cpuinfo-{cpu}"
    source.write_text(cpuinfo_text(cpu))
    target = root / "proc/cpuinfo"
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise Stop(f"cannot bind an Arm cpuinfo on {target}: {done.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


HOST_CA = "etc/ssl/certs/edgecnn-host-ca-bundle.crt"  # in the root
NETWORK_ENV: dict[str, str] = {}  # what pip inside the root needs of the host's network settings


def carry_network_settings(root: Path) -> None:
    """The host's CA bundle (a network behind TLS inspection adds its own CA there) and proxy
    variables, so that pip inside the root reaches PyPI the way pip on the host does."""
    bundle = next(
        (
            Path(p)
            for p in (
                os.environ.get("PIP_CERT"),
                os.environ.get("SSL_CERT_FILE"),
                os.environ.get("REQUESTS_CA_BUNDLE"),
                "/etc/ssl/certs/ca-certificates.crt",
            )
            if p and Path(p).is_file()
        ),
        None,
    )
    NETWORK_ENV.clear()
    if bundle is not None:
        shutil.copyfile(bundle, root / HOST_CA)
        NETWORK_ENV["PIP_CERT"] = NETWORK_ENV["SSL_CERT_FILE"] = f"/{HOST_CA}"
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(name):
            NETWORK_ENV[name] = os.environ[name]
    index = os.environ.get("PIP_INDEX_URL", "")
    if index.startswith(("http://", "https://")):  # a file:// index of the host is not in the root
        NETWORK_ENV["PIP_INDEX_URL"] = index


def in_root(
    root: Path, tools: dict, argv, *, what: str, cpu: str | None = None, capture: bool = False, timeout: float = 3600
) -> str:
    env = {
        "PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONUNBUFFERED": "1",
        **NETWORK_ENV,
    }
    if cpu:
        env["QEMU_CPU"] = cpu  # read by every qemu-aarch64 the kernel starts, children included
    return LOG.run([tools["chroot"], root, *argv], what=what, env=env, capture=capture, timeout=timeout)


def install_edgecnn(root: Path, tools: dict, work: Path, record: dict) -> None:
    # The wheel a `pip install edgecnn` would fetch, built from this tree on x86 (pure Python).
    with tempfile.TemporaryDirectory(prefix="edgecnn-arm-src.") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("edgecnn", "calibration", "converters"):
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        wheels = work / "wheel"
        wheels.mkdir(parents=True)
        LOG.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--disable-pip-version-check",
                "-w",
                wheels,
                source,
            ],
            what="building the edgecnn wheel",
        )
    (wheel,) = wheels.glob("edgecnn-*.whl")
    inner = f"{WORK}/wheel/{wheel.name}"
    if not (root / VENV.lstrip("/") / "bin/python").exists():
        LOG.say(f"root: python3 -m venv {VENV}")
        in_root(root, tools, ["/usr/bin/python3", "-m", "venv", VENV], what="python3 -m venv")
    LOG.say(f"root: pip install {wheel.name} (no extra; aarch64 wheels from PyPI)")
    in_root(root, tools, [f"{VENV}/bin/pip", "install", inner], what="pip install edgecnn (aarch64)", timeout=2 * 3600)
    # The same version may already be there from an earlier run: put this tree's code in.
    in_root(
        root,
        tools,
        [f"{VENV}/bin/pip", "install", "--no-deps", "--force-reinstall", inner],
        what="pip install --force-reinstall edgecnn (aarch64)",
    )
    in_root(root, tools, [f"{VENV}/bin/pip", "check"], what="pip check (aarch64)")
    listed = json.loads(
        in_root(root, tools, [f"{VENV}/bin/pip", "list", "--format", "json"], what="pip list (aarch64)", capture=True)
    )
    probe = in_root(root, tools, [f"{VENV}/bin/python", "-c", _PROBE], what="probe (aarch64)", capture=True)
    record["aarch64"] = {
        "packages": {p["name"].lower(): p["version"] for p in listed},
        "wheel": wheel.name,
        **json.loads(probe),
    }
    if record["aarch64"]["machine"] != "aarch64":
        raise Stop(f"the root's python reports machine {record['aarch64']['machine']}, not aarch64")
    if record["aarch64"]["tensorflow_importable"]:
        raise Stop("TensorFlow is importable in the aarch64 install: the runtime side must not need it")


_PROBE = r"""
import importlib.util, json, platform, sys
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                  "libc": " ".join(platform.libc_ver()),
                  "debian": open("/etc/debian_version").read().strip(),
                  "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None}))
"""


# -- the x86 side ---------------------------------------------------------------------------
def data_slice(source: Path, limit: int, target: Path) -> dict:
    lines = [line for line in (source / "dataset.txt").read_text().splitlines() if line.strip()]
    chosen = lines[:limit]
    (target / "data").mkdir(parents=True)
    for line in chosen:
        relative = line.split(",")[0].strip()
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, destination)
    (target / "dataset.txt").write_text("\n".join(chosen) + "\n")
    if (source / "synset_words.txt").exists():
        shutil.copy2(source / "synset_words.txt", target / "synset_words.txt")
    return {"source": str(source), "images": len(chosen), "of": len(lines), "which": f"first {len(chosen)}"}


def fashion_slice(limit: int, target: Path) -> dict:
    """The first `limit` images of the Fashion-MNIST test split as PNG files with a dataset.txt,
    so that each side decodes and preprocesses them with its own Pillow and numpy."""
    from PIL import Image

    from calibration import open_source

    source = open_source("fashion-mnist", split="test")
    x, y = source.load_arrays(limit)
    (target / "data").mkdir(parents=True)
    lines = []
    for i, (image, label) in enumerate(zip(x, y)):
        name = f"data/{i:05d}.png"
        Image.fromarray(image[..., 0]).save(target / name)
        lines.append(f"{name}, {int(label)}")
    (target / "dataset.txt").write_text("\n".join(lines) + "\n")
    return {
        "source": f"fashion-mnist/test ({source.describe().get('path')})",
        "images": len(lines),
        "of": len(source),
        "which": f"first {len(lines)}",
    }


def _python_env() -> dict:
    """The host Python's environment with this tree importable (sides.py imports edgecnn)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def x86_side(work: Path, args, record: dict) -> list[Path]:
    python, env = [sys.executable], _python_env()
    if args.model is not None:
        model = Path(args.model).resolve()
        LOG.say(f"x86: the trained model {model}")
        trained = {"given": str(model)}
    else:
        model = work / "model" / "mobilenet_v2.keras"
        LOG.say("x86: edgecnn train " + " ".join(TRAIN))
        out = LOG.run(
            [*python, "-m", "edgecnn", "train", *TRAIN, "--out", model, "--json"],
            what="x86 edgecnn train",
            cwd=REPO,
            env=env,
            capture=True,
        )
        trained = {"command": "edgecnn train " + " ".join(TRAIN), **_train_facts(out)}
    LOG.say(f"x86: edgecnn export {model.name} " + " ".join(EXPORT))
    LOG.run(
        [*python, "-m", "edgecnn", "export", model, *EXPORT, "--out", work / "artifacts", "--json"],
        what="x86 edgecnn export",
        cwd=REPO,
        env=env,
        capture=True,
    )
    artifacts = sorted((work / "artifacts").glob("*/*.tflite")) + sorted((work / "artifacts").glob("*/*.onnx"))
    if [p.suffix for p in artifacts] != [".tflite", ".onnx"]:
        raise Stop(f"edgecnn export wrote {[p.name for p in artifacts]}, not one .tflite and one .onnx")
    record["artifacts"] = {}
    for path in artifacts:
        manifest = json.loads((path.parent / "manifest.json").read_text())
        record["artifacts"][path.name] = {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "quantization": manifest.get("quantization"),
            "format": manifest.get("format"),
            "quantization_settings": manifest.get("quantization_settings"),
            "inputs": manifest.get("inputs"),
            "outputs": manifest.get("outputs"),
            "parity": manifest.get("parity"),
            "weights": manifest.get("weights"),
        }
    record["model"] = {"kind": "trained on Fashion-MNIST", **trained}
    record["data"] = (
        data_slice(Path(args.data), args.limit, work / "data")
        if args.data is not None
        else fashion_slice(args.limit, work / "data")
    )
    LOG.say(f"x86: predictions on {record['data']['images']} images")
    LOG.run(
        [
            *python,
            HERE / "sides.py",
            "predict",
            "--ort-reference",
            "--data",
            work / "data",
            "--out",
            work / "x86",
            *artifacts,
        ],
        what="x86 predictions",
        cwd=REPO,
        env=env,
    )
    record["x86"] = {"predict": json.loads((work / "x86/predict.json").read_text()), "evaluate": {}, **_x86_versions()}
    for path in artifacts:
        out = LOG.run(
            [*python, "-m", "edgecnn", "evaluate", path, "--data", work / "data", "--json", *crop_option(path)],
            what=f"x86 edgecnn evaluate {path.name}",
            cwd=REPO,
            env=env,
            capture=True,
        )
        record["x86"]["evaluate"][path.name] = _one_row(out)
    return artifacts


def crop_option(path: Path) -> list[str]:
    """The artifact's own central crop for `edgecnn evaluate` (as `sides.py predict` uses it): a
    folder of images is otherwise cropped by the folder's default (0.875), which the model trained
    on whole Fashion-MNIST images never saw."""
    crop = json.loads((path.parent / "manifest.json").read_text()).get("preprocess", {}).get("crop_fraction")
    return [] if crop is None else ["--crop-fraction", str(crop)]


def _train_facts(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {k: data.get(k) for k in ("epochs", "val_accuracy", "seconds") if k in data}


def x86_emulated_side(work: Path, tools: dict, artifacts: list[Path], cpu: str) -> dict:
    """The same predictions on x86 without VNNI: the host Python under qemu-x86_64-static -cpu CPU
    (TCG: AVX2 and FMA, no AVX-512, so MLAS and XNNPACK take their AVX2 kernels), on x86's inputs."""
    out = work / f"x86-{cpu}"
    LOG.say(f"x86 without VNNI ({X86_EMULATOR} -cpu {cpu}): predictions on x86's inputs")
    LOG.run(
        [
            tools[X86_EMULATOR],
            "-cpu",
            cpu,
            sys.executable,
            HERE / "sides.py",
            "predict",
            "--ort-reference",
            "--inputs",
            work / "x86/inputs.npy",
            "--out",
            out,
            *artifacts,
        ],
        what=f"x86 predictions under {X86_EMULATOR} -cpu {cpu}",
        cwd=REPO,
        env=_python_env(),
    )
    version = subprocess.run([tools[X86_EMULATOR], "--version"], capture_output=True, text=True).stdout
    return {
        "emulator": f"{(version.splitlines() or ['?'])[0]}, -cpu {cpu}",
        "predict": json.loads((out / "predict.json").read_text()),
    }


def _x86_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("edgecnn", "numpy", "pillow", "ai-edge-litert", "onnxruntime", "tensorflow"):
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "int8_dot_product": _x86_int8_dot(),
        "packages": versions,
    }


def _x86_int8_dot() -> str:
    """VNNI or not: without it, ONNX Runtime's x86 int8 kernels (u8s8, VPMADDUBSW) add pairs of
    products in 16 bits, which saturate with full-range 8-bit weights (reduce_range=False);
    edgecnn's int8 ONNX has 7-bit weights (reduce_range=True) since that was found here."""
    flags = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    found = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    if found:
        return "VNNI (" + ", ".join(found) + ")"
    return "no VNNI (" + ("avx2" if "avx2" in flags else "no avx2") + ")"


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _one_row(text: str) -> dict:
    data = json.loads(text)
    if isinstance(data, list):
        if len(data) != 1:
            raise Stop(f"evaluate --json printed {len(data)} rows, expected one")
        data = data[0]
    return data


# -- the aarch64 side -----------------------------------------------------------------------
def arm_side(root: Path, tools: dict, work: Path, artifacts: list[Path], cpu: str, args) -> dict:
    inner = lambda path: f"{WORK}/{Path(path).relative_to(work).as_posix()}"  # noqa: E731
    shutil.copy2(HERE / "sides.py", work / "sides.py")
    py = f"{VENV}/bin/python"
    result: dict = {"board": CPU_MODELS[cpu]["board"], "evaluate": {}}
    LOG.say(f"aarch64 ({cpu}): predictions, images decoded here")
    in_root(
        root,
        tools,
        [
            py,
            f"{WORK}/sides.py",
            "predict",
            "--data",
            f"{WORK}/data",
            "--out",
            f"{WORK}/arm-{cpu}/own",
            *map(inner, artifacts),
        ],
        what=f"aarch64 predictions ({cpu})",
        cpu=cpu,
    )
    LOG.say(f"aarch64 ({cpu}): predictions on x86's float inputs")
    in_root(
        root,
        tools,
        [
            py,
            f"{WORK}/sides.py",
            "predict",
            "--ort-reference",
            "--inputs",
            f"{WORK}/x86/inputs.npy",
            "--out",
            f"{WORK}/arm-{cpu}/given",
            *map(inner, artifacts),
        ],
        what=f"aarch64 predictions on x86 inputs ({cpu})",
        cpu=cpu,
    )
    result["predict"] = json.loads((work / f"arm-{cpu}/own/predict.json").read_text())
    for path in artifacts:
        LOG.say(f"aarch64 ({cpu}): edgecnn evaluate {path.name}")
        out = in_root(
            root,
            tools,
            [f"{VENV}/bin/edgecnn", "evaluate", inner(path), "--data", f"{WORK}/data", "--json", *crop_option(path)],
            what=f"aarch64 edgecnn evaluate {path.name} ({cpu})",
            cpu=cpu,
            capture=True,
        )
        result["evaluate"][path.name] = _one_row(out)
    LOG.say(f"aarch64 ({cpu}): edgecnn benchmark --json --runs 3 --min-secs 0 --threads {args.threads}")
    start = time.monotonic()
    out = in_root(
        root,
        tools,
        [
            f"{VENV}/bin/edgecnn",
            "benchmark",
            *map(inner, artifacts),
            "--json",
            "--runs",
            "3",
            "--min-secs",
            "0",
            "--threads",
            str(args.threads),
            "--data",
            f"{WORK}/data",
        ],
        what=f"aarch64 edgecnn benchmark ({cpu})",
        cpu=cpu,
        capture=True,
    )
    result["benchmark_seconds"] = round(time.monotonic() - start, 1)
    result["benchmark_rows"] = json.loads(out)
    return result


# -- the verdict ----------------------------------------------------------------------------
def _compare(x86, other, step: float | None) -> dict:
    """Top-1 and the largest difference of one side's outputs against x86's (and in output steps)."""
    import numpy as np

    if other.shape != x86.shape:
        return {"shape_x86": list(x86.shape), "shape_other": list(other.shape), "top1_equal": False}
    x_top, a_top = x86.argmax(axis=1), other.argmax(axis=1)
    diff = np.abs(x86.astype(np.float64) - other.astype(np.float64))
    largest = float(diff.max())
    return {
        "images": int(len(x86)),
        "top1_equal": bool(np.array_equal(x_top, a_top)),
        "top1_agreeing": int(np.sum(x_top == a_top)),
        "max_abs_diff": largest,
        "output_step": step,
        "max_steps": round(largest / step, 3) if step else None,
        "outputs_differing": int(np.sum(diff > 0)),
        "outputs": int(diff.size),
    }


def output_steps(record: dict) -> dict:
    return {name: facts.get("output_step") for name, facts in record["x86"]["predict"]["artifacts"].items()}


def compare_x86_emulated(work: Path, artifacts: list[Path], cpu: str, steps: dict) -> dict:
    import numpy as np

    report = {}
    for path in artifacts:
        x86 = np.load(work / "x86" / f"{path.name}.npy")
        other = np.load(work / f"x86-{cpu}" / f"{path.name}.npy")
        entry = {"given": _compare(x86, other, steps.get(path.name))}
        reference = work / "x86" / f"{path.name}.reference.npy"
        if reference.exists():
            x_ref, o_ref = np.load(reference), np.load(work / f"x86-{cpu}" / f"{path.name}.reference.npy")
            entry["ort_optimizations_off"] = {
                "top1_agreeing": int(np.sum(x_ref.argmax(1) == o_ref.argmax(1))),
                "images": int(len(x_ref)),
                "max_abs_diff": float(np.abs(x_ref - o_ref).max()),
                "fused_vs_reference_top1": int(np.sum(other.argmax(1) == o_ref.argmax(1))),
                "fused_vs_reference_max_abs_diff": float(np.abs(other - o_ref).max()),
            }
        report[path.name] = entry
    return report


def compare_outputs(work: Path, artifacts: list[Path], cpu: str, steps: dict) -> dict:
    import numpy as np

    x86_inputs = np.load(work / "x86/inputs.npy")
    own_inputs = np.load(work / f"arm-{cpu}/own/inputs.npy")
    report = {
        "inputs_identical": bool(np.array_equal(x86_inputs, own_inputs)),
        "inputs_max_abs_diff": float(np.max(np.abs(x86_inputs - own_inputs)))
        if x86_inputs.shape == own_inputs.shape
        else None,
        "artifacts": {},
    }
    for path in artifacts:
        x86 = np.load(work / "x86" / f"{path.name}.npy")
        entry = {}
        for mode in ("own", "given"):
            arm = np.load(work / f"arm-{cpu}/{mode}" / f"{path.name}.npy")
            entry[mode] = _compare(x86, arm, steps.get(path.name))
        entry["distinct_top1_x86"] = int(len(np.unique(x86.argmax(axis=1))))
        reference = work / "x86" / f"{path.name}.reference.npy"
        if reference.exists():  # ONNX: the QDQ graph run without fused int8 kernels, both sides
            x_ref = np.load(reference)
            a_ref = np.load(work / f"arm-{cpu}/given" / f"{path.name}.reference.npy")
            entry["ort_optimizations_off"] = {
                "note": "ORT_DISABLE_ALL on both sides, x86 inputs: QDQ as written, float between",
                "top1_agreeing": int(np.sum(x_ref.argmax(1) == a_ref.argmax(1))),
                "images": int(len(x_ref)),
                "max_abs_diff": float(np.abs(x_ref - a_ref).max()),
                "x86_fused_vs_x86_reference_top1": int(np.sum(x86.argmax(1) == x_ref.argmax(1))),
                "aarch64_fused_vs_aarch64_reference_top1": int(
                    np.sum(np.load(work / f"arm-{cpu}/given" / f"{path.name}.npy").argmax(1) == a_ref.argmax(1))
                ),
            }
        report["artifacts"][path.name] = entry
    return report


def check_benchmark_rows(rows, artifacts: list[Path], runtimes: dict) -> list[str]:
    """What is missing or wrong in the benchmark JSON (empty: complete)."""
    problems = []
    if not isinstance(rows, list) or len(rows) != len(artifacts):
        return [
            f"expected a list of {len(artifacts)} rows, got {type(rows).__name__} "
            f"of {len(rows) if isinstance(rows, list) else '?'}"
        ]
    try:
        from edgecnn.harness import ROW_KEYS
    except ImportError:
        ROW_KEYS = ()
    for row, path in zip(rows, artifacts):
        name = path.name
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            problems.append(f"{name}: keys missing: {', '.join(missing)}")
        if row.get("status") != "ok":
            problems.append(f"{name}: status {row.get('status')}: {row.get('error')}")
            continue
        if Path(str(row.get("artifact"))).name != name:
            problems.append(f"{name}: row is about {row.get('artifact')}")
        latency = row.get("latency_ms") or {}
        for key in ("count", "min", "max", "mean", "std", "p50", "p90", "p99"):
            if latency.get(key) is None:
                problems.append(f"{name}: latency_ms.{key} missing")
        if (latency.get("count") or 0) < 3:
            problems.append(f"{name}: {latency.get('count')} timed runs, asked for 3")
        for key in ("init_ms", "first_ms", "runtime", "runtime_version", "sha256", "peak_rss_mb"):
            if row.get(key) in (None, ""):
                problems.append(f"{name}: {key} missing")
        if not row.get("ops"):
            problems.append(f"{name}: no ops listed")
        if row.get("threads") not in (None,) and row.get("threads") != runtimes["threads"]:
            problems.append(f"{name}: threads {row.get('threads')}, asked for {runtimes['threads']}")
        if row.get("runtime") != runtimes[path.suffix]:
            problems.append(f"{name}: ran on {row.get('runtime')}, expected {runtimes[path.suffix]}")
        if (row.get("host") or {}).get("arch") != "aarch64":
            problems.append(f"{name}: host arch {(row.get('host') or {}).get('arch')}, not aarch64")
        if row.get("sha256") != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{name}: sha256 differs from the x86 artifact")
    return problems


def _output_failures(where: str, name: str, mode: str, entry: dict) -> list[str]:
    what = {"own": "images decoded on aarch64", "given": "x86 inputs"}[mode]
    failures = []
    if not entry["top1_equal"]:
        failures.append(
            f"{where}: {name}: top-1 differs from x86 on "
            f"{entry.get('images', 0) - entry.get('top1_agreeing', 0)} image(s) ({what})"
        )
    steps = entry.get("max_steps")
    if steps is None and "max_abs_diff" in entry:
        failures.append(f"{where}: {name}: no output quantization scale to measure the difference in")
    elif steps is not None and steps > TOLERANCE_STEPS + 1e-6:
        failures.append(
            f"{where}: {name}: largest output difference {entry['max_abs_diff']:.4g} is {steps:g} "
            f"steps of the output scale {entry['output_step']:.4g}, over {TOLERANCE_STEPS} ({what})"
        )
    return failures


def verdict(record: dict, work: Path, artifacts: list[Path], args) -> None:
    failures = []
    steps = output_steps(record)
    record["tolerance"] = {
        "top1": "equal on every image",
        "output_steps": TOLERANCE_STEPS,
        "output_step_by_artifact": steps,
    }
    emulated = record.get("x86_no_vnni")
    if emulated:
        emulated["outputs"] = compare_x86_emulated(work, artifacts, emulated["cpu"], steps)
        where = f"x86 {emulated['cpu']} (no VNNI)"
        probe = emulated["predict"].get("u8s8_probe")
        if not (probe and probe.get("saturates")):
            failures.append(
                f"{where}: ONNX Runtime did not take the AVX2 u8s8 kernel (probe {probe}); the leg "
                "does not measure x86 without VNNI"
            )
        for name, entry in emulated["outputs"].items():
            failures += _output_failures(where, name, "given", entry["given"])
    for cpu, side in record["aarch64_runs"].items():
        side["outputs"] = compare_outputs(work, artifacts, cpu, steps)
        for name, entry in side["outputs"]["artifacts"].items():
            for mode in ("own", "given"):
                failures += _output_failures(cpu, name, mode, entry[mode])
        for name, row in side["evaluate"].items():
            x86_row = record["x86"]["evaluate"][name]
            for key in ("top1", "top5", "n"):
                if row.get(key) != x86_row.get(key):
                    failures.append(f"{cpu}: {name}: evaluate {key} {row.get(key)} vs x86 {x86_row.get(key)}")
        side["benchmark_problems"] = check_benchmark_rows(
            side["benchmark_rows"], artifacts, {".tflite": "litert", ".onnx": "onnxruntime", "threads": args.threads}
        )
        failures += [f"{cpu}: benchmark: {p}" for p in side["benchmark_problems"]]
    record["failures"] = failures
    record["passed"] = not failures
    record["diagnosis"] = diagnose(record)


def diagnose(record: dict) -> list[str]:
    """Measured hints at where an ONNX difference comes from (not part of the verdict)."""
    notes = []
    for cpu, side in record["aarch64_runs"].items():
        for name, entry in side["outputs"]["artifacts"].items():
            ref = entry.get("ort_optimizations_off")
            if ref is None or entry["given"]["top1_equal"]:
                continue
            notes.append(
                f"{cpu}: {name}: default ONNX Runtime top-1 agrees on {entry['given']['top1_agreeing']}/"
                f"{entry['given']['images']} images; with graph optimizations off (no fused int8 "
                f"kernels) x86 and aarch64 agree on {ref['top1_agreeing']}/{ref['images']}; the fused "
                f"kernels agree with that reference on {ref['x86_fused_vs_x86_reference_top1']}/{ref['images']} "
                f"on x86 ({record['x86']['int8_dot_product']}) and "
                f"{ref['aarch64_fused_vs_aarch64_reference_top1']}/{ref['images']} on aarch64"
            )
    return notes


def summarize(record: dict) -> None:
    """The figures a reader wants first, gathered from the details."""
    largest = {"own": 0.0, "given": 0.0}
    by_artifact: dict = {}
    for side in record["aarch64_runs"].values():
        for name, entry in side["outputs"]["artifacts"].items():
            for mode in largest:
                diff = entry[mode].get("max_abs_diff", float("inf"))
                largest[mode] = max(largest[mode], diff)
                by_artifact[name] = max(by_artifact.get(name, 0.0), diff)
        side["emulated_latency_ms"] = {
            "note": EMULATED,
            **{
                row.get("artifact_name") or Path(str(row.get("artifact"))).name: (row.get("latency_ms") or {}).get(
                    "p50"
                )
                for row in side["benchmark_rows"]
                if isinstance(row, dict)
            },
        }
    steps = [e.get("max_steps") for _, _, e in _all_entries(record)]
    record["summary"] = {
        "passed": record["passed"],
        "largest_output_steps": max((v for v in steps if v is not None), default=None),
        "tolerance_steps": TOLERANCE_STEPS,
        "top1_equal_everywhere": not any("top-1" in f for f in record["failures"]),
        "largest_output_difference": largest["own"],
        "largest_output_difference_x86_inputs": largest["given"],
        "largest_output_difference_by_artifact": by_artifact,
        "top1_equal_by_artifact": {
            name: all(
                side["outputs"]["artifacts"][name][mode]["top1_equal"]
                for side in record["aarch64_runs"].values()
                for mode in ("own", "given")
            )
            for name in by_artifact
        },
        "cpus": list(record["aarch64_runs"]),
        "images": record["data"]["images"],
    }


def markdown(record: dict) -> str:
    s = record["summary"]
    cpus = ", ".join(f"{cpu} (the core of a {CPU_MODELS[cpu]['board']})" for cpu in s["cpus"])
    lines = [
        "# ARM check: the runtime side on aarch64 under qemu",
        "",
        f"Result: **{'PASSED' if s['passed'] else 'FAILED'}** on {record['date']} "
        f"(`{record['command']}`), {s['images']} real images, emulated CPUs: "
        f"{cpus}"
        + (f"; and x86 without VNNI ({record['x86_no_vnni']['emulator']})" if record.get("x86_no_vnni") else "")
        + ".",
        "",
        f"Verdict: the same top-1 as x86 on every image, and every output within "
        f"{record['tolerance']['output_steps']} steps of the output's quantization scale of x86's ("
        + ", ".join(
            f"{n}: step {v:.4g}" if v else f"{n}: no scale"
            for n, v in record["tolerance"]["output_step_by_artifact"].items()
        )
        + ").",
        "",
        f"- Same top-1 as x86 on every image, both artifacts, every CPU: "
        f"**{'yes' if s['top1_equal_everywhere'] else 'no'}**.",
        f"- Largest output difference (dequantized outputs, aarch64 vs x86): "
        f"**{s['largest_output_difference']:.3g}** (largest in output steps, every leg: "
        f"{s['largest_output_steps']}) with the images "
        "decoded on each side, "
        f"{s['largest_output_difference_x86_inputs']:.3g} on x86's float inputs; by artifact: "
        + ", ".join(
            f"{n} {d:.3g} (top-1 equal: {'yes' if s['top1_equal_by_artifact'][n] else 'no'})"
            for n, d in s["largest_output_difference_by_artifact"].items()
        )
        + ".",
        f"- `edgecnn evaluate` rows (top1, top5, n) equal to x86's: "
        f"{'no' if any(': evaluate ' in f for f in record['failures']) else 'yes'}; "
        f"`edgecnn benchmark --json` complete: "
        f"{'no' if any(': benchmark: ' in f for f in record['failures']) else 'yes'}.",
    ]
    if record["failures"]:
        lines += ["", "Failures:", ""] + [f"- {f}" for f in record["failures"]]
    if record.get("diagnosis"):
        lines += ["", "Diagnosis (measured, not part of the verdict):", ""] + [f"- {d}" for d in record["diagnosis"]]
    lines += [
        "",
        "| CPU (QEMU_CPU) | artifact | runtime on aarch64 | top-1 = x86 | max abs diff | "
        "evaluate top-1 / top-5 / n (x86) | emulated p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for cpu, side in record["aarch64_runs"].items():
        rows = {Path(str(r.get("artifact"))).name: r for r in side["benchmark_rows"] if isinstance(r, dict)}
        for name, entry in side["outputs"]["artifacts"].items():
            ev, x86_ev = side["evaluate"][name], record["x86"]["evaluate"][name]
            run = side["predict"]["artifacts"][name]
            p50 = (rows.get(name, {}).get("latency_ms") or {}).get("p50")
            lines.append(
                f"| {cpu} | {name} | {run['runtime']} {run['runtime_version']} | "
                f"{entry['own']['top1_agreeing']}/{entry['own']['images']} | {entry['own']['max_abs_diff']:.3g} | "
                f"{ev.get('top1')} / {ev.get('top5')} / {ev.get('n')} "
                f"({x86_ev.get('top1')} / {x86_ev.get('top5')} / {x86_ev.get('n')}) | "
                f"{'' if p50 is None else f'{p50:.1f}'} ({EMULATED}) |"
            )
    emulated = record.get("x86_no_vnni")
    if emulated:
        for name, entry in emulated["outputs"].items():
            run = emulated["predict"]["artifacts"][name]
            g = entry["given"]
            lines.append(
                f"| x86 {emulated['cpu']} (no VNNI, x86 inputs) | {name} | {run['runtime']} "
                f"{run['runtime_version']} | {g['top1_agreeing']}/{g['images']} | {g['max_abs_diff']:.3g} | "
                "- | - |"
            )
    lines += [
        "",
        "max abs diff in steps of the output scale: "
        + "; ".join(f"{where} {name} {entry.get('max_steps')}" for where, name, entry in _all_entries(record))
        + ".",
    ]
    if emulated:
        probe = emulated["predict"].get("u8s8_probe") or {}
        native = record["x86"]["predict"].get("u8s8_probe") or {}
        lines += [
            "",
            f"Which x86 kernel ran (`sides.u8s8_probe`: a MatMulInteger of uint8 255 by int8 127, "
            f"exact sum {probe.get('exact')}): natively {native.get('ort')} "
            f"({'saturated' if native.get('saturates') else 'exact'}), under -cpu {emulated['cpu']} "
            f"{probe.get('ort')} "
            f"({'saturated: the AVX2 VPMADDUBSW kernel' if probe.get('saturates') else 'exact'}).",
        ]
    a, x = record["aarch64"], record["x86"]
    first_run = next(iter(record["aarch64_runs"].values()))
    distinct_top1 = ", ".join(str(e["distinct_top1_x86"]) for e in first_run["outputs"]["artifacts"].values())
    ev = next(iter(x["evaluate"].values()))
    x86_packages = ", ".join(f"{k} {v}" for k, v in x["packages"].items())
    root_state = "built by this run" if record["root"]["state"] == "built" else "cached"
    pk = a["packages"]
    lines += (
        [
            "",
            "Latency under qemu is the cost of emulation, not of the model: it is here only to show "
            "that the benchmark JSON is complete, and must never be quoted as a Raspberry Pi figure.",
            "",
            f"The model was trained on Fashion-MNIST ({_model_line(record)}; x86 top-1 on these images "
            f"{ev.get('top1')}, distinct x86 top-1 classes: {distinct_top1}): a trained model's outputs have "
            "margins, so a top-1 that differs means arithmetic that differs, where a random-weight model's "
            "top-1 flips on a one-step rounding difference between two correct kernels.",
            "",
            "## Setup",
            "",
            f"- x86: {x['cpu']} ({x['int8_dot_product']}), Python {x['python']}, " + x86_packages,
            *(
                [f"- x86 without VNNI: {emulated['emulator']}, the same Python and packages, user mode, no chroot"]
                if emulated
                else []
            ),
            f"- aarch64 root: Debian {a['debian']} arm64 ({root_state} "
            f"{record['root'].get('built')}), Python {a['python']}, {a['libc']}, installed with "
            f"`pip install {a['wheel']}` (no extra, TensorFlow importable: {a['tensorflow_importable']}): "
            + ", ".join(
                f"{k} {pk[k]}"
                for k in ("edgecnn", "numpy", "pillow", "ai-edge-litert", "onnxruntime", "typer", "rich", "matplotlib")
                if k in pk
            ),
            f"- emulation: {record['qemu']}; binfmt_misc {record['binfmt']}; CPU features seen by the "
            "runtimes: "
            + "; ".join(
                f"{cpu}: dotprod {side['predict']['cpu'].get('dotprod')}, i8mm {side['predict']['cpu'].get('i8mm')}"
                for cpu, side in record["aarch64_runs"].items()
            ),
            f"- data: {record['data']['which']} of {record['data']['source']} ({record['data']['of']} images)",
            f"- artifacts (`edgecnn export MODEL.keras {' '.join(EXPORT)}`): "
            + ", ".join(f"{n} ({v['bytes']} bytes, sha256 {v['sha256'][:12]})" for n, v in record["artifacts"].items()),
            "",
            "## Time",
            "",
            "| step | seconds |",
            "|---|---|",
        ]
        + [f"| {k} | {v} |" for k, v in record["seconds"].items()]
        + [
            "",
            "Everything is in `result.json` beside this file.",
            "",
        ]
    )
    return "\n".join(lines)


def _model_line(record: dict) -> str:
    m = record.get("model") or {}
    if m.get("given"):
        return f"given as {Path(m['given']).name}"
    return f"`{m.get('command')}`, Keras validation top-1 {m.get('val_accuracy')}"


def _all_entries(record: dict):
    """(where, artifact, comparison) for every leg and input path."""
    for cpu, side in record["aarch64_runs"].items():
        for name, entry in side["outputs"]["artifacts"].items():
            for mode in ("own", "given"):
                yield f"{cpu} ({mode})", name, entry[mode]
    for name, entry in (record.get("x86_no_vnni") or {}).get("outputs", {}).items():
        yield f"x86 {record['x86_no_vnni']['cpu']}", name, entry["given"]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# -- main -----------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="check.py", description="Prove the runtime side on aarch64 under qemu (needs root)."
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("EDGECNN_ARM_CACHE") or Path.home() / ".cache" / "edgecnn" / "arm64-bookworm"),
        help="Where the arm64 root is built and kept (default ~/.cache/edgecnn/arm64-bookworm).",
    )
    parser.add_argument("--rebuild", action="store_true", help="Build a new root even if one is cached.")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Labelled images (a folder with dataset.txt); default: the Fashion-MNIST "
        "test split (apt-get install dataset-fashion-mnist), written as PNG files.",
    )
    parser.add_argument("--limit", type=int, default=256, help="Images of --data to use (the first N).")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="A trained Fashion-MNIST .keras model to export instead of training one "
        "(edgecnn train " + " ".join(TRAIN) + ").",
    )
    parser.add_argument(
        "--x86-cpu",
        default=X86_CPU,
        help=f"The x86 CPU without VNNI to emulate ({X86_EMULATOR} -cpu; default {X86_CPU}); none to skip that leg.",
    )
    parser.add_argument(
        "--cpu",
        default="cortex-a72,cortex-a76",
        help="Emulated CPUs, comma-separated (QEMU_CPU): cortex-a72 = Pi 4, cortex-a76 = Pi 5.",
    )
    parser.add_argument("--threads", type=int, default=4, help="--threads for edgecnn benchmark.")
    parser.add_argument("--mirror", default=MIRROR, help="Debian mirror for debootstrap.")
    parser.add_argument(
        "--results", type=Path, default=HERE, help="Where result.json and RESULT.md go (default benchmarks/arm/)."
    )
    parser.add_argument("--keep", action="store_true", help=f"Keep the work folder ({WORK} in the root).")
    args = parser.parse_args(argv)
    if args.limit < 1:
        raise Stop(f"--limit must be at least 1. Received {args.limit}", 2)
    if args.threads < 1:
        raise Stop(f"--threads must be at least 1. Received {args.threads}", 2)
    args.cpus = [c.strip() for c in args.cpu.split(",") if c.strip()]
    unknown = [c for c in args.cpus if c not in CPU_MODELS]
    if not args.cpus or unknown:
        raise Stop(f"--cpu {args.cpu}: use qemu CPU names, comma-separated, from {', '.join(CPU_MODELS)}", 2)
    if args.data is not None and not (args.data / "dataset.txt").is_file():
        raise Stop(f"--data {args.data}: not a folder with a dataset.txt of `path, label` lines", 2)
    if args.model is not None and not args.model.is_file():
        raise Stop(f"--model {args.model}: no such file (a trained .keras model)", 2)
    args.x86_cpu = None if args.x86_cpu.strip().lower() in ("", "none") else args.x86_cpu.strip()
    return args


def fashion_mnist_or_stop(args) -> None:
    """The trained model's data: the train split to train on, the test split as the images."""
    from calibration import open_source
    from calibration.errors import BadArgument

    splits = (["train"] if args.model is None else []) + (["test"] if args.data is None else [])
    for split in splits:
        try:
            open_source("fashion-mnist", split=split)
        except BadArgument as exc:
            raise Stop(str(exc), 2) from None


def _terminate(signum, frame):
    raise Stop("terminated (SIGTERM); the root's mounts were undone", 143)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
        tools = preflight(argv, args.x86_cpu)
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            raise Stop(f"the x86 side exports the artifacts: pip install -e '.[export]' into {sys.executable} first", 2)
        fashion_mnist_or_stop(args)
        signal.signal(signal.SIGTERM, _terminate)  # let the mounts be undone
        args.cache.mkdir(parents=True, exist_ok=True)
        lock = open(args.cache / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Stop(f"another check.py run is using {args.cache}; wait for it", 2) from None
        return run(args, tools)
    except Stop as stop:
        print(f"error: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def run(args, tools: dict) -> int:
    started = time.monotonic()
    LOG.open(args.cache / "last-run.log")
    LOG.file.write(f"\n=== {dt.datetime.now().isoformat(timespec='seconds')} {shlex.join(sys.argv)}\n")
    LOG.say(f"log: {LOG.where()}")
    record: dict = {
        "schema": "edgecnn.arm-check/1",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python3", "benchmarks/arm/check.py", *sys.argv[1:]]),
        "binfmt": enable_binfmt(),
        "qemu": subprocess.run(
            [tools["qemu-aarch64-static"], "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "seconds": {},
    }
    with _timed(record["seconds"], "root (debootstrap, or cached)"):
        root = build_root(args.cache, tools, args.mirror, record, rebuild=args.rebuild)
    work = root / WORK.lstrip("/")
    with mounted(root):
        remove_tree(work)
        work.mkdir(parents=True)
        try:
            with _timed(record["seconds"], "install (venv, pip, aarch64)"):
                install_edgecnn(root, tools, work, record)
            with _timed(record["seconds"], "x86 side (train, export, predictions, evaluate)"):
                artifacts = x86_side(work, args, record)
            if args.x86_cpu:
                with _timed(record["seconds"], f"x86 without VNNI, qemu -cpu {args.x86_cpu}"):
                    record["x86_no_vnni"] = {
                        "cpu": args.x86_cpu,
                        **x86_emulated_side(work, tools, artifacts, args.x86_cpu),
                    }
            record["aarch64_runs"] = {}
            for cpu in args.cpus:
                with _timed(record["seconds"], f"aarch64 side, {cpu}"), cpu_view(root, args.cache, cpu):
                    record["aarch64_runs"][cpu] = arm_side(root, tools, work, artifacts, cpu, args)
            verdict(record, work, artifacts, args)
        finally:
            if not args.keep:
                remove_tree(work)
    record["seconds"]["total"] = round(time.monotonic() - started, 1)
    summarize(record)
    write_atomic(args.results / "result.json", json.dumps(record, indent=2) + "\n")
    write_atomic(args.results / "RESULT.md", markdown(record))
    s = record["summary"]
    LOG.say(
        f"{'PASSED' if s['passed'] else 'FAILED'}: top-1 equal everywhere {s['top1_equal_everywhere']}, "
        f"largest output difference {s['largest_output_difference']:.3g}, "
        f"{record['seconds']['total']:.0f} s; {args.results / 'RESULT.md'}"
    )
    for failure in record["failures"]:
        print(f"error: {failure}", file=sys.stderr)
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
