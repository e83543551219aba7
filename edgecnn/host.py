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
    seen = [f"{meaning} {when}" for shift, when in ((0, "now"), (16, "since boot"))
            for bit, meaning in _THROTTLE_BITS.items() if value >= 0 and value & (bit << shift)]
    found = f" ({', '.join(seen)})" if seen else ""
    return (f"the Raspberry Pi reports throttling: vcgencmd get_throttled = {throttled}{found}; "
            "latency figures may be unreliable (bits: 0x1 under-voltage now, 0x2 arm frequency "
            "capped now, 0x4 currently throttled, 0x8 soft temperature limit now; 0x10000, 0x20000, "
            "0x40000, 0x80000 the same since boot)")


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
    model = (cpuinfo.get("model name") or cpuinfo.get("Model") or cpuinfo.get("Hardware")
             or platform.processor() or "unknown cpu")
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
    simd = sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                           "amx_int8", "neon", "asimd", "asimddp", "i8mm", "sve"})
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
