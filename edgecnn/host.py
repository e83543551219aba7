"""Describe the machine a measurement ran on: CPU, cores, OS, governor, temperature.

Every benchmark and evaluation row carries this, so numbers from a laptop and
from a Raspberry Pi never get mixed up. Standard library only.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "cpu model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def _governor() -> str | None:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def _cpu_mhz() -> float | None:
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    return round(int(khz) / 1000, 1) if khz and khz.isdigit() else None


def temperatures_c() -> dict[str, float]:
    """Thermal zones the kernel exposes (a Pi has `cpu-thermal`), in degrees Celsius."""
    zones = {}
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        kind, temp = _read(str(zone / "type")), _read(str(zone / "temp"))
        if kind and temp and temp.lstrip("-").isdigit():
            zones[kind] = int(temp) / 1000
    return zones


def pi_throttling() -> str | None:
    """`vcgencmd get_throttled` on a Raspberry Pi (0x0 means never throttled), else None."""
    if not shutil.which("vcgencmd"):
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().split("=")[-1] or None


# The bits of `vcgencmd get_throttled`; each one shifted by 16 means the same "since boot".
_THROTTLE_BITS = {
    0x1: "under-voltage",
    0x2: "arm frequency capped",
    0x4: "throttled",
    0x8: "soft temperature limit",
}


def throttling_warning(throttled: str | None) -> str | None:
    """A one-line warning for a `throttled` value other than 0x0 (None for 0x0 or no value)."""
    if throttled is None:
        return None
    try:
        value = int(throttled, 16)
    except ValueError:
        value = -1  # not a number: warn without naming bits
    if value == 0:
        return None
    seen = [
        f"{meaning} {when}"
        for shift, when in ((0, "now"), (16, "since boot"))
        for bit, meaning in _THROTTLE_BITS.items()
        if value >= 0 and value & (bit << shift)
    ]
    found = f" ({', '.join(seen)})" if seen else ""
    return (
        f"the Raspberry Pi reports throttling: vcgencmd get_throttled = {throttled}{found}; "
        "latency figures may be unreliable (bits: 0x1 under-voltage now, 0x2 arm frequency "
        "capped now, 0x4 currently throttled, 0x8 soft temperature limit now; 0x10000, 0x20000, "
        "0x40000, 0x80000 the same since boot)"
    )


# -- the CPU features that decide int8 speed -------------------------------------------------

# /proc/cpuinfo flag -> what it means for int8 and float16 inference.
X86_FEATURES = {
    "avx2": "AVX2 (int8 through 16-bit multiply-adds: pmaddubsw)",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI (int8 dot product, vpdpbusd)",
    "avx_vnni": "AVX-VNNI (256-bit int8 dot product)",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_fp16": "AVX-512 FP16",
    "amx_int8": "AMX-INT8 (int8 tile matrix multiply)",
    "amx_bf16": "AMX-BF16",
}
ARM_FEATURES = {
    "asimd": "Advanced SIMD (NEON)",
    "asimddp": "dot product (SDOT/UDOT)",
    "i8mm": "int8 matrix multiply (SMMLA)",
    "asimdhp": "float16 arithmetic (FP16)",
    "fphp": "float16 scalar",
    "bf16": "BF16",
    "sve": "SVE",
    "sve2": "SVE2",
}
# (implementer, part) from /proc/cpuinfo -> core name; the cores of Raspberry Pis and common boards.
ARM_CORES = {
    ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd04"): "Cortex-A35",
    ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75",
    ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd0d"): "Cortex-A77",
    ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd44"): "Cortex-X1",
    ("0x41", "0xd46"): "Cortex-A510",
    ("0x41", "0xd47"): "Cortex-A710",
    ("0x41", "0xd48"): "Cortex-X2",
    ("0x41", "0xd49"): "Neoverse-N2",
    ("0x41", "0xd4d"): "Cortex-A715",
    ("0x41", "0xd4e"): "Cortex-X3",
    ("0x41", "0xd4f"): "Neoverse-V2",
    ("0x41", "0xd80"): "Cortex-A520",
    ("0x41", "0xd81"): "Cortex-A720",
    ("0x41", "0xd82"): "Cortex-X4",
    ("0x41", "0xc07"): "Cortex-A7",
    ("0x41", "0xc0f"): "Cortex-A15",
    ("0x61", "0x022"): "Apple M1 Icestorm",
    ("0x61", "0x023"): "Apple M1 Firestorm",
}


def cpu_features(cpuinfo_text: str | None = None, arch: str | None = None) -> dict:
    """The CPU features that decide int8 speed, read from /proc/cpuinfo (or the text given).

    {"arch", "features": {flag: bool}, "int8_dot_product": bool, "int8_path": a phrase,
    "core_types": ["Cortex-A76", ...] (Arm)}. Under emulation (qemu-user) the kernel reports the
    host's flags: the figures then describe the host, not the emulated core."""
    text = cpuinfo_text if cpuinfo_text is not None else (_read("/proc/cpuinfo") or "")
    arch = (arch or platform.machine()).lower()
    flags: set[str] = set()
    implementers, parts = [], []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags |= set(value.split())
        elif key == "cpu implementer":
            implementers.append(value.strip().lower())
        elif key == "cpu part":
            parts.append(value.strip().lower())
    is_arm = arch.startswith(("arm", "aarch")) or bool(flags & {"asimd", "neon"})
    table = ARM_FEATURES if is_arm else X86_FEATURES
    features = {flag: flag in flags for flag in table}
    if is_arm:
        features["asimd"] = features["asimd"] or "neon" in flags or arch in ("aarch64", "arm64")
        dot = features["asimddp"] or features["i8mm"]
        path = (
            "i8mm + dot product"
            if features["i8mm"]
            else "dot product (SDOT)"
            if features["asimddp"]
            else "NEON 16-bit multiply-adds (no int8 dot product)"
        )
        cores = sorted({ARM_CORES.get((i, p), f"{i}/{p}") for i, p in zip(implementers, parts)})
    else:
        dot = features["avx512_vnni"] or features["avx_vnni"] or features["amx_int8"]
        path = (
            "AMX-INT8"
            if features["amx_int8"]
            else "AVX-512 VNNI"
            if features["avx512_vnni"]
            else "AVX-VNNI"
            if features["avx_vnni"]
            else "AVX2 (no VNNI)"
            if features["avx2"]
            else "SSE (no AVX2)"
        )
        cores = []
    return {"arch": arch, "features": features, "int8_dot_product": bool(dot), "int8_path": path, "core_types": cores}


def describe_host() -> dict:
    """A JSON-ready description of this machine, as of now."""
    host = {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": _governor(),
        "cpu_mhz": _cpu_mhz(),
        "temperatures_c": temperatures_c() or None,
        "throttled": pi_throttling(),
        # What decides int8 speed: every benchmark row records it (rows carry describe_host()).
        "cpu_features": cpu_features(),
    }
    model = _read("/proc/device-tree/model")
    if model:
        host["board"] = model.rstrip("\x00")
    return host


# -- for the benchmark scripts: which machine a published figure came from ---------------


def machine_info() -> dict:
    cpuinfo = {}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in ("flags", "Features") and not flags:
                flags = set(value.split())
            elif key and key not in cpuinfo:
                cpuinfo[key] = value
    except OSError:
        pass
    model = (
        cpuinfo.get("model name")
        or cpuinfo.get("Model")
        or cpuinfo.get("Hardware")
        or platform.processor()
        or "unknown cpu"
    )
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    simd = sorted(
        flags
        & {
            "avx",
            "avx2",
            "fma",
            "avx512f",
            "avx512_vnni",
            "avx_vnni",
            "avx512_bf16",
            "amx_int8",
            "neon",
            "asimd",
            "asimddp",
            "i8mm",
            "sve",
        }
    )
    return {
        "cpu_model": model,
        "cpu_family_model_stepping": "/".join(cpuinfo.get(k, "?") for k in ("cpu family", "model", "stepping")),
        "simd": simd,
        "cores_usable": usable,
        "cpus_online": os.cpu_count(),
        "arch": platform.machine(),
        "os": os_name,
        "hostname": platform.node(),  # recorded, but not used for the folder: sandboxes get random ones
        "memory_gib": _memory_gib(),
    }


def _memory_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_slug(machine: dict) -> str:
    """`amd-epyc-2c-x86_64`: CPU model, usable cores, arch. Stable across sandboxes."""
    text = re.sub(r"\((r|tm|c)\)|\bcpu\b|\bprocessor\b|@.*$", " ", machine["cpu_model"].lower())
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"
    return f"{slug[:48].rstrip('-')}-{machine['cores_usable']}c-{machine['arch'].lower()}"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(out: Path, name: str, report: dict, markdown: str) -> Path:
    """A benchmark's `<out>/<machine slug>/<name>.json` and `.md`, each written atomically; the folder."""
    import json

    folder = Path(out) / report["machine_slug"]
    write_atomic(folder / f"{name}.json", json.dumps(report, indent=1) + "\n")
    write_atomic(folder / f"{name}.md", markdown)
    return folder
