#!/usr/bin/env python
"""Wall time of `edgecnn --help` and of the README's default export, this tree against another.

    python benchmarks/cli_timing.py --base-tree ../base [--help-runs 10] [--export-runs 3]
        [--out benchmarks/results]

The issue that restructured the package (#13) promised that neither may grow by more than 5%. Both
trees run with the same Python and packages; `PYTHONPATH` picks the tree. The runs alternate
(base, this, base, this, ...) so that a busy machine slows both alike, and the figure is the ratio
of the medians (this / base). The export is `edgecnn export mobilenetv2 --int8 --out TMP` in a
fresh process each time (weights `auto`; EDGECNN_OFFLINE=1 so that neither tree waits for a
download). Results go to `<out>/<machine slug>/cli_timing.{json,md}` with the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402

HELP = [sys.executable, "-m", "edgecnn", "--help"]


def _export_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "edgecnn", "export", "mobilenetv2", "--int8", "--out", str(out)]


def _timed(tree: Path, command: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), EDGECNN_OFFLINE="1")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"{' '.join(command[2:])} failed in {tree} (exit {done.returncode}): {tail[0]}")
    return seconds


def _interleaved(trees: dict[str, Path], runs: int, command_for) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(runs):
        for name, tree in trees.items():
            with tempfile.TemporaryDirectory(prefix="edgecnn-timing-") as tmp:
                seconds[name].append(round(_timed(tree, command_for(Path(tmp))), 3))
    return seconds


def _summary(seconds: dict[str, list[float]]) -> dict:
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {"seconds": seconds, "median_s": medians, "ratio": round(medians["this"] / medians["base"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-tree", type=Path, required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    base = args.base_tree.resolve()
    if not (base / "edgecnn" / "__init__.py").is_file():
        parser.error(f"--base-tree {base} is not an edgecnn checkout")
    trees = {"base": base, "this": REPO}
    commits = {
        name: subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
        ).stdout.strip()
        for name, tree in trees.items()
    }
    load_before = os.getloadavg()
    results = {
        "help": _summary(_interleaved(trees, args.help_runs, lambda _out: HELP)),
        "export_mobilenetv2_int8": _summary(_interleaved(trees, args.export_runs, _export_command)),
    }
    machine = machine_info()
    record = {
        "schema": "edgecnn.cli_timing/1",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "commits": commits,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **results,
    }
    folder = args.out / machine_slug(machine)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "cli_timing.json", json.dumps(record, indent=2) + "\n")
    lines = [
        "# `edgecnn --help` and the default export: this tree against the base",
        "",
        f"Base {commits['base']}, this {commits['this']}; runs interleaved (base, this, ...); load average "
        f"{record['load_average_before'][0]} before, {record['load_average_after'][0]} after. "
        "Written by benchmarks/cli_timing.py.",
        "",
        "| command | runs | base median s | this median s | this / base |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {"help": "`edgecnn --help`", "export_mobilenetv2_int8": "`edgecnn export mobilenetv2 --int8`"}
    for name, label in labels.items():
        row = results[name]
        runs = len(row["seconds"]["this"])
        lines.append(
            f"| {label} | {runs} | {row['median_s']['base']:.3f} | {row['median_s']['this']:.3f} | {row['ratio']:.3f} |"
        )
    write_atomic(folder / "cli_timing.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
