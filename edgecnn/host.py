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
