"""RESULTS.md: the machine, the versions, how each model was trained, `edgecnn compare`'s
table and plot, and the steps that failed (with their reasons)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from suite import config, state
from suite.config import ModelSettings


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _pct(value) -> str | None:
    return None if value is None else f"{100 * value:.2f}%"


def _machine(machine: dict) -> str:
    memory = f", {machine['memory_gib']} GiB" if machine.get("memory_gib") else ""
    return (
        f"{machine['cpu_model']} ({machine['cores_usable']} usable cores of {machine['cpus_online']}, "
        f"{machine['arch']}, {machine['os']}{memory}; SIMD {' '.join(machine['simd']) or 'none listed'})"
    )


def training_rows(workdir: Path) -> list[list]:
    """One row per trained model found in the work folder, read from its sidecars."""
    rows = []
    for key, m in config.MODELS.items():
        if not m.trained:
            continue
        keras = workdir / "models" / f"{key}.keras"
        sidecar = state.read_json(keras.with_name(f"{key}.edgecnn.json"))
        if not keras.is_file() or not isinstance(sidecar, dict):
            continue
        pruned = state.read_json(keras.with_name(f"{key}-pruned{round(config.PRUNE_SPARSITY * 100)}.edgecnn.json"))
        data = sidecar.get("data") or {}
        shape = sidecar.get("input_shape") or []
        rows.append(
            [
                key,
                m.zoo,
                "x".join(str(d) for d in shape),
                m.alpha if m.alpha is not None else "",
                sidecar.get("epochs"),
                sidecar.get("batch_size"),
                sidecar.get("lr"),
                sidecar.get("lr_schedule"),
                f"{data.get('train_count', 0):,}",
                f"{(data.get('validation') or {}).get('count', 0):,}",
                _pct(sidecar.get("val_accuracy")),
                sidecar.get("seconds"),
                _pct(pruned.get("val_accuracy")) if isinstance(pruned, dict) else "",
                "not converged (subset, few epochs)" if m.note.startswith("not converged") else "",
            ]
        )
    return rows


def _caveats(models: list[ModelSettings]) -> list[str]:
    """What a reader must know about the models in this run, and which suite models it left out."""
    lines = []
    heavy = [m.key for m in models if m.note.startswith("not converged")]
    if heavy:
        lines += [
            f"{', '.join(heavy)}: trained on a subset of the images for a few epochs so that a run is "
            "feasible on two cores. They are **not converged**, and their accuracies (and the accuracy "
            "drops of their variants) say little about the architectures.",
            "",
        ]
    if any(not m.trained for m in models):
        lines += [
            "The `*-224` rows are the MobileNets at ImageNet size (224x224x3, 1000 classes) with **random "
            "weights** (`--weights none`, manifest `weights: random`): latency and size only, never "
            "evaluated.",
            "",
        ]
    left_out = [key for key in config.MODELS if key not in {m.key for m in models}]
    if left_out:
        lines += [f"Not measured in this run (`--models` chose a subset): {', '.join(left_out)}.", ""]
    return lines


def latest_steps(suite_log: Path) -> dict[str, dict]:
    """Each step's latest entry over all runs (a later run's skip keeps the earlier result)."""
    latest = {}
    for row in state.read_jsonl(suite_log):
        step = row.get("step")
        if not step or row.get("kind") == "run":
            continue
        names = [step]
        fmt = row.get("format") or ""
        if "+" in fmt and row.get("status") == "ok":  # one command exported several formats
            names += [step.replace(fmt, single) for single in fmt.split("+")]
        for name in names:
            if row.get("status") != "skipped" or name not in latest:
                latest[name] = row
    return latest


def write_results_md(
    path: Path,
    *,
    machine: dict,
    slug: str,
    versions: dict,
    command: str,
    run,
    models: list[ModelSettings],
    this_run: list[dict],
    started: str,
    seconds: float,
    compare_md: str | None,
    compare_reason: str | None,
    plots: list[str],
    workdir: Path,
    suite_log: Path,
) -> str:
    from edgecnn.host import write_atomic

    counts = Counter(entry["status"] for entry in this_run)
    lines = [f"# Benchmark suite: {slug}", ""]
    if run.quick:
        lines += [
            "**Quick run (`--quick`): tiny training and measurement limits; a smoke test of the "
            "pipeline, not results.**",
            "",
        ]
    lines += [
        f"{started} on {_machine(machine)}.",
        "",
        f"Command: `{command}`. Every runtime ran with {run.threads} thread(s); LiteRT for .tflite, "
        f"ONNX Runtime ({run.provider or 'cpu'}) for .onnx; benchmark: warm-up {run.warmup}, at least "
        f"{run.runs} runs and {run.min_secs:g} s, at most {run.max_secs:g} s; calibration "
        f"{run.calib_samples} Fashion-MNIST training images (the shipped photos for the 224x224 rows).",
        "",
        f"This run: {len(this_run)} steps ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}) "
        f"in {seconds / 60:.1f} min. Models in it: {', '.join(m.key for m in models)}.",
        "",
        "## Versions",
        "",
        *_table(["tool", "version"], [[k, v] for k, v in versions.items()]),
        "",
        "## Models and training",
        "",
        "Trained from scratch on the Fashion-MNIST training split (`edgecnn train`, seed 0, Adam); "
        "validation accuracy is the Keras float model's on the test split (or the first images of it), "
        "after training; `pruned` is after `edgecnn prune --sparsity 0.5` and its fine-tuning.",
        "",
        *_table(
            [
                "model",
                "zoo",
                "input",
                "alpha",
                "epochs",
                "batch",
                "lr",
                "schedule",
                "training images",
                "val images",
                "val top-1",
                "train s",
                "pruned val top-1",
                "note",
            ],
            training_rows(workdir),
        ),
        "",
        *_caveats(models),
        "## Comparison (`edgecnn compare`)",
        "",
    ]
    if compare_md is not None:
        lines += [compare_md.rstrip(), ""]
    else:
        lines += [f"Not available: {compare_reason}", ""]
    lines += [f"![{Path(plot).stem}]({plot})" for plot in plots]
    if plots:
        lines.append("")
    failed = [row for row in latest_steps(suite_log).values() if row.get("status") in ("failed", "refused", "blocked")]
    lines += ["## Failed steps", ""]
    if failed:
        lines += [
            "The latest attempt of each step that did not succeed. refused: the CLI rejected the "
            "arguments (exit code 2), e.g. a format the variant does not support; blocked: a step it "
            "needs did not succeed.",
            "",
        ]
        lines += _table(
            ["step", "status", "reason", "when"],
            [[f"`{row['step']}`", row["status"], row.get("reason"), row.get("at")] for row in failed],
        )
    else:
        lines.append("None.")
    by_kind: dict[str, list[float]] = {}
    for entry in this_run:
        if entry["status"] in ("ok", "failed", "refused", "split") and entry.get("seconds") is not None:
            by_kind.setdefault(entry["kind"], []).append(entry["seconds"])
    lines += [
        "",
        "## Time spent in this run",
        "",
        *_table(
            ["step kind", "commands run", "seconds"],
            [[kind, len(times), f"{sum(times):.0f}"] for kind, times in by_kind.items()],
        ),
        "",
        "Every step with its command, status, seconds and reason: `suite-log.jsonl`; "
        "the benchmark and evaluate rows: `results.jsonl`.",
        "",
    ]
    text = "\n".join(lines)
    write_atomic(path, text)
    return text
