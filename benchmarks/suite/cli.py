"""`python benchmarks/suite.py`: options, the plan, the loop over models, compare, RESULTS.md."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from edgecnn.host import machine_info, machine_slug
from edgecnn.manifest import tool_versions
from edgecnn.results import now_iso
from suite import config, report, state
from suite.config import MODELS, QUICK_RUN, RunSettings
from suite.runner import REPO, log, run_edgecnn
from suite.steps import Paths, Suite


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python benchmarks/suite.py",
        description="Train the small models on Fashion-MNIST, export every variant in TFLite and ONNX, "
        "benchmark and evaluate each, and write results.jsonl, suite-log.jsonl and RESULTS.md "
        "under OUT/<machine>/. Resumable: what is done with the same settings is skipped.",
    )
    p.add_argument(
        "--models",
        nargs="+",
        metavar="KEY",
        choices=list(MODELS),
        default=list(MODELS),
        help="Models to run (default: all): " + ", ".join(MODELS),
    )
    p.add_argument(
        "--variants",
        nargs="+",
        metavar="NAME",
        choices=list(config.VARIANTS),
        default=list(config.VARIANTS),
        help="Variants (default: all): " + ", ".join(config.VARIANTS),
    )
    p.add_argument(
        "--formats",
        nargs="+",
        choices=config.FORMATS,
        default=list(config.FORMATS),
        help="Artifact formats (default: tflite onnx).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: 300 training images, 1 epoch, 200 test images, short benchmarks; "
        "writes to benchmarks/work/ unless --out/--workdir say otherwise.",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="Threads for every runtime (default: the machine's usable cores)."
    )
    p.add_argument("--runs", type=int, default=None, help="Benchmark: at least N timed runs (default 50; quick 10).")
    p.add_argument("--min-secs", type=float, default=None, help="Benchmark: at least S seconds (default 1; quick 0.2).")
    p.add_argument("--max-secs", type=float, default=None, help="Benchmark: at most S seconds (default 60; quick 10).")
    p.add_argument("--warmup", type=int, default=1, help="Benchmark warm-up runs (default 1).")
    p.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        help="Evaluate on the first N test images (default: the model's own, all 10,000 for the small "
        "models; quick 200).",
    )
    p.add_argument("--calib-samples", type=int, default=None, help="Calibration images (default 100; quick 32).")
    p.add_argument(
        "--provider",
        choices=("cpu", "cuda", "tensorrt"),
        default=None,
        help="ONNX Runtime provider for the benchmarks (cuda/tensorrt need onnxruntime-gpu).",
    )
    p.add_argument(
        "--step-timeout",
        type=float,
        default=None,
        metavar="S",
        help="Kill a step after S seconds and record it as failed (default: no limit).",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Trained models, artifacts and step logs (default benchmarks/work/<machine>[-quick]).",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Results go to OUT/<machine>/ (default benchmarks/results; quick: benchmarks/work/quick-results).",
    )
    p.add_argument("--force", action="store_true", help="Redo every step, even those already done.")
    p.add_argument("--list", action="store_true", help="Print the models' settings and the variants, then exit.")
    return p


def _run_settings(args, threads: int) -> RunSettings:
    defaults = QUICK_RUN if args.quick else {}
    chosen = {
        "calib_samples": args.calib_samples,
        "runs": args.runs,
        "min_secs": args.min_secs,
        "max_secs": args.max_secs,
    }
    values = {**defaults, **{k: v for k, v in chosen.items() if v is not None}}
    return RunSettings(
        threads=threads,
        formats=tuple(args.formats),
        variants=tuple(v for v in config.VARIANTS if v in args.variants),
        warmup=args.warmup,
        eval_limit=args.eval_limit,
        provider=args.provider,
        step_timeout=args.step_timeout,
        force=args.force,
        quick=args.quick,
        **values,
    )


def print_settings(models) -> None:
    header = (
        "model",
        "zoo",
        "input",
        "alpha",
        "epochs",
        "batch",
        "lr",
        "schedule",
        "train images",
        "prune ep",
        "QAT ep",
        "QAT images",
        "test images",
    )
    rows = [header]
    for m in models:
        if m.imagenet:
            rows.append((m.key, m.zoo, m.input_size, m.alpha, *["-"] * 8, "none: random weights"))
            continue
        rows.append(
            (
                m.key,
                m.zoo,
                m.input_size,
                m.alpha if m.alpha is not None else "",
                m.epochs,
                m.batch_size,
                f"{m.lr:g}",
                m.lr_schedule,
                m.limit or "all",
                m.prune_epochs,
                m.qat_epochs,
                m.qat_limit or "all",
                m.eval_limit or "all",
            )
        )
    widths = [max(len(str(row[i])) for row in rows if len(row) > i) for i in range(len(header))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"variants: {', '.join(config.VARIANTS)} (the 224x224 rows: {', '.join(config.IMAGENET_VARIANTS)})")


def _estimate(suite_log: state.SuiteLog, keys: set[str]) -> str:
    earlier = {}
    for row in state.read_jsonl(suite_log.path):
        if row.get("model") in keys and row.get("status") != "skipped" and row.get("seconds"):
            earlier[row["step"]] = row["seconds"]
    if not earlier:
        return "no timings from earlier runs in this work folder (benchmarks/README.md has estimates)"
    return (
        f"earlier runs here took {sum(earlier.values()) / 60:.0f} min for {len(earlier)} of these steps; "
        "what is already done is skipped"
    )


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    models = [MODELS[key] for key in MODELS if key in args.models]
    if args.quick:
        models = [config.quick(m) for m in models]
    if args.list:
        print_settings(models)
        return 0
    machine = machine_info()
    slug = machine_slug(machine)
    run = _run_settings(args, args.threads or machine["cores_usable"])
    workdir = (args.workdir or REPO / "benchmarks" / "work" / (f"{slug}-quick" if args.quick else slug)).resolve()
    out = (args.out or REPO / "benchmarks" / ("work/quick-results" if args.quick else "results")).resolve()
    results_dir = out / slug
    workdir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = now_iso(), time.perf_counter()
    command = shlex.join(["python", "benchmarks/suite.py", *(sys.argv[1:] if argv is None else argv)])
    suite_log = state.SuiteLog(results_dir / "suite-log.jsonl", run=started)
    paths = Paths(workdir=workdir, results=results_dir / "results.jsonl")
    versions = tool_versions()
    suite_log.add(
        step="run",
        kind="run",
        model=None,
        status="started",
        command=command,
        machine=machine,
        versions=versions,
        threads=run.threads,
        workdir=str(workdir),
    )
    log(
        f"{slug}: {len(models)} model(s), {len(run.variants)} variant(s), {'+'.join(run.formats)}, "
        f"{run.threads} thread(s); work in {workdir}, results in {results_dir}"
    )
    log(f"estimate: {_estimate(suite_log, {m.key for m in models})}")

    suite = Suite(paths, run, suite_log)
    for m in models:
        model_started = time.perf_counter()
        suite.model(m)
        log(f"{m.key} done in {(time.perf_counter() - model_started) / 60:.1f} min")

    compare_md, compare_reason, plots = compare(results_dir, suite_log, workdir / "logs" / "compare.log")
    this_run = [e for e in suite_log.entries if e["kind"] != "run"]
    report.write_results_md(
        results_dir / "RESULTS.md",
        machine=machine,
        slug=slug,
        versions=versions,
        command=command,
        run=run,
        models=models,
        this_run=this_run,
        started=started,
        seconds=time.perf_counter() - t0,
        compare_md=compare_md,
        compare_reason=compare_reason,
        plots=plots,
        workdir=workdir,
        suite_log=suite_log.path,
    )
    count = {status: sum(e["status"] == status for e in this_run) for status in ("failed", "refused", "blocked")}
    log(
        f"{len(this_run)} steps; {count['failed']} failed, {count['refused']} refused by the CLI, "
        f"{count['blocked']} blocked; {results_dir / 'RESULTS.md'}"
    )
    return 1 if count["failed"] or count["blocked"] else 0


def compare(results_dir: Path, suite_log: state.SuiteLog, log_path: Path):
    """`edgecnn compare --format md --plot`: (markdown, reason it is missing, plot file names)."""
    results = results_dir / "results.jsonl"
    if not results.is_file():
        return None, "no results.jsonl (nothing was measured)", []
    plot = "compare.png"
    argv = ["compare", results.name, "--format", "md", "--baseline", "float32", "--plot", plot]
    log("compare ...")
    before = time.time()
    outcome = run_edgecnn(argv, cwd=results_dir, log_path=log_path)
    suite_log.add(
        step="compare",
        kind="compare",
        model=None,
        status=outcome.status,
        command="edgecnn " + shlex.join(argv),
        seconds=outcome.seconds,
        reason=outcome.reason,
    )
    log(f"compare: {'ok' if outcome.reason is None else 'failed: ' + outcome.reason}")
    if outcome.reason is not None:
        return None, f"`edgecnn compare` failed: {outcome.reason}", []
    plots = sorted(p.name for p in results_dir.glob("*.png") if p.stat().st_mtime >= before - 1)
    return outcome.stdout, None, plots
