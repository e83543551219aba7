"""The steps of one model: train, prune, export each variant, benchmark and evaluate each artifact.

Each step is one `edgecnn` command run in the work folder (so the paths recorded in
manifests and result rows are relative to it), skipped when its output already exists
with the same settings, logged to suite-log.jsonl with its status and seconds. A step that
fails is logged with its reason; what depends on it is logged as blocked; the rest goes on.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from suite import config, state
from suite.config import DATASET, ModelSettings, RunSettings, Variant
from suite.runner import Outcome, display, log, run_edgecnn

QUANTIZATION_FLAGS = {"--int8": "int8", "--float16": "float16", "--dynamic": "dynamic", "--int16x8": "int16x8"}


@dataclass
class Paths:
    workdir: Path
    results: Path  # results.jsonl

    def model(self, key: str, suffix: str = "") -> Path:
        return Path("models") / f"{key}{suffix}.keras"

    def variant_folder(self, key: str, variant: str) -> Path:
        return Path("artifacts") / key / variant

    def step_log(self, step: str) -> Path:
        return self.workdir / "logs" / (step.replace(" ", "_").replace("/", "-") + ".log")


class Suite:
    def __init__(self, paths: Paths, run: RunSettings, suite_log: state.SuiteLog):
        self.paths, self.run, self.log = paths, run, suite_log
        self.results = state.Results(paths.results)

    # -- bookkeeping --------------------------------------------------------------------
    def _record(
        self, step: str, kind: str, model: str, status: str, *, argv=None, seconds=None, reason=None, **facts
    ) -> None:
        self.log.add(
            step=step,
            kind=kind,
            model=model,
            status=status,
            command=display(argv) if argv else None,
            seconds=seconds,
            reason=reason,
            **facts,
        )
        timing = f" ({seconds:.1f} s)" if seconds is not None else ""
        log(f"{step}: {status}{timing}" + (f": {reason}" if reason else ""))

    def _execute(self, step: str, argv) -> Outcome:
        log(f"{step} ...")
        return run_edgecnn(
            argv, cwd=self.paths.workdir, log_path=self.paths.step_log(step), timeout=self.run.step_timeout
        )

    def _log_name(self, outcome: Outcome) -> str:
        return str(outcome.log.relative_to(self.paths.workdir))

    def _results_arg(self) -> str:
        """results.jsonl as seen from the work folder (no machine-specific path in the log)."""
        return os.path.relpath(self.paths.results, self.paths.workdir)

    def _blocked(self, step: str, kind: str, model: str, needs: str) -> None:
        self._record(step, kind, model, "blocked", reason=f"needs `{needs}`, which did not succeed")

    # -- train and prune ------------------------------------------------------------------
    def train(self, m: ModelSettings) -> Path | None:
        out = self.paths.model(m.key)
        argv = [
            "train",
            m.zoo,
            "--dataset",
            DATASET,
            "--input-size",
            str(m.input_size),
            *(["--alpha", f"{m.alpha:g}"] if m.alpha is not None else []),
            "--epochs",
            str(m.epochs),
            "--batch-size",
            str(m.batch_size),
            "--lr",
            f"{m.lr:g}",
            "--lr-schedule",
            m.lr_schedule,
            *_optional("--limit", m.limit),
            *_optional("--val-limit", m.val_limit),
            "--seed",
            "0",
            "--out",
            str(out),
            "--json",
        ]
        return self._model_step(f"train {m.key}", "train", m, out, argv, inputs={})

    def prune(self, m: ModelSettings, trained: Path) -> Path | None:
        out = self.paths.model(m.key, f"-pruned{round(config.PRUNE_SPARSITY * 100)}")
        argv = [
            "prune",
            str(trained),
            "--sparsity",
            f"{config.PRUNE_SPARSITY:g}",
            "--dataset",
            DATASET,
            "--epochs",
            str(m.prune_epochs),
            "--batch-size",
            str(m.batch_size),
            "--lr",
            f"{m.prune_lr:g}",
            *_optional("--limit", m.limit),
            *_optional("--val-limit", m.val_limit),
            "--seed",
            "0",
            "--out",
            str(out),
            "--json",
        ]
        inputs = {str(trained): state.fingerprint(self.paths.workdir / trained)}
        return self._model_step(f"prune {m.key}", "prune", m, out, argv, inputs=inputs)

    def _model_step(self, step, kind, m, out: Path, argv, *, inputs) -> Path | None:
        settings = {"argv": argv, "inputs": inputs}
        target = self.paths.workdir / out
        if not self.run.force and state.model_done(target, settings):
            self._record(step, kind, m.key, "skipped", argv=argv, reason=None)
            return out
        outcome = self._execute(step, argv)
        if outcome.reason is None:
            state.write_model_stamp(target, settings)
        self._record(
            step,
            kind,
            m.key,
            outcome.status,
            argv=argv,
            seconds=outcome.seconds,
            reason=outcome.reason,
            log=self._log_name(outcome),
        )
        return out if outcome.reason is None else None

    # -- export ----------------------------------------------------------------------------
    def export_argv(self, m: ModelSettings, variant: Variant, source: Path | None) -> tuple[list, dict]:
        """The export command without --format, and the manifest options it must record."""
        folder = self.paths.variant_folder(m.key, variant.name)
        flags = list(variant.flags)
        if m.imagenet:  # a zoo name at 224, random weights, the shipped calibration photos
            argv = [
                "export",
                m.zoo,
                *flags,
                "--weights",
                "none",
                "--input-size",
                str(m.input_size),
                "--alpha",
                f"{m.alpha:g}",
            ]
            options = {
                "model": m.zoo,
                "weights": "none",
                "input_size": m.input_size,
                "alpha": m.alpha,
                "calib": "default",
            }
        else:
            argv = ["export", str(source), *flags, "--calib", DATASET]
            options = {"model": str(source), "calib": DATASET}
            if variant.qat:
                argv += [
                    "--dataset",
                    DATASET,
                    "--epochs",
                    str(m.qat_epochs),
                    *_optional("--qat-lr", m.qat_lr),
                    *_optional("--qat-limit", m.qat_limit),
                ]
        argv += ["--calib-samples", str(self.run.calib_samples), "--seed", "0", "--out", str(folder)]
        quantization = next((QUANTIZATION_FLAGS[f] for f in flags if f in QUANTIZATION_FLAGS), "float32")
        options.update(quantization=quantization, calib_samples=self.run.calib_samples, seed=0)
        return argv, options

    def export(self, m: ModelSettings, variant: Variant, source: Path | None) -> dict[str, Path]:
        """Export one variant in every format of the run; returns {format: artifact} that exist.

        Formats still to do are exported by one `--format all` command (the model is built,
        calibrated and QAT-trained once); when that fails, each is tried again on its own,
        so one format's failure does not take the other down and each has its own reason.
        """
        argv, options = self.export_argv(m, variant, source)
        folder = self.paths.workdir / self.paths.variant_folder(m.key, variant.name)
        inputs = {} if source is None else {str(source): state.fingerprint(self.paths.workdir / source)}
        settings = {"argv": argv, "inputs": inputs}
        artifacts, todo = {}, []
        for fmt in self.run.formats:
            done = None if self.run.force else state.export_done(folder, fmt, settings, options, variant.qat)
            if done is not None:
                artifacts[fmt] = done
                self._record(
                    self._export_step(m, variant, fmt),
                    "export",
                    m.key,
                    "skipped",
                    argv=[*argv, "--format", fmt],
                    variant=variant.name,
                    format=fmt,
                )
            else:
                todo.append(fmt)
        if len(todo) > 1:
            artifacts.update(self._export_once(m, variant, "all", todo, argv, settings, options, folder))
            todo = [fmt for fmt in todo if fmt not in artifacts]
        for fmt in todo:
            artifacts.update(self._export_once(m, variant, fmt, [fmt], argv, settings, options, folder))
        return artifacts

    def _export_step(self, m, variant, fmt) -> str:
        return f"export {m.key} {variant.name} {fmt}"

    def _export_once(self, m, variant, fmt_option, formats, argv, settings, options, folder) -> dict[str, Path]:
        """One export command, logged; {format: artifact} of what it published as asked."""
        full = [*argv, "--format", fmt_option, "--json"]
        step = self._export_step(m, variant, "+".join(formats))
        for fmt in formats:  # a folder of another name (an older naming) must not linger
            for artifact, _ in state.artifact_manifests(folder, fmt):
                shutil.rmtree(artifact.parent, ignore_errors=True)
            state.export_stamp(folder, fmt).unlink(missing_ok=True)
        outcome = self._execute(step, full)
        found = published(folder, formats, settings, options, variant.qat)
        missing = [fmt for fmt in formats if fmt not in found]
        if outcome.reason is None and missing:
            outcome.reason = f"exit code 0, but no {'/'.join(missing)} artifact whose manifest records the options"
        status = outcome.status
        if outcome.reason is not None and len(formats) > 1:
            status = "split"
            outcome.reason = f"{outcome.reason} (again one format at a time{' for ' + '/'.join(missing)})"
        self._record(
            step,
            "export",
            m.key,
            status,
            argv=full,
            seconds=outcome.seconds,
            reason=outcome.reason,
            variant=variant.name,
            format="+".join(formats),
            log=self._log_name(outcome),
        )
        if status == "split":  # export publishes one format after the other: the first may be done
            for fmt in found:
                self._record(
                    self._export_step(m, variant, fmt),
                    "export",
                    m.key,
                    "ok",
                    argv=full,
                    reason=None,
                    variant=variant.name,
                    format=fmt,
                    note="published before the failure",
                )
        return found

    # -- measure ---------------------------------------------------------------------------
    def benchmark(self, m: ModelSettings, variant: str, fmt: str, artifact: Path) -> None:
        run, runtime = self.run, config.RUNTIMES[fmt]
        provider = run.provider if fmt == "onnx" else None
        rel = str(artifact)
        argv = [
            "benchmark",
            rel,
            "--runtime",
            runtime,
            "--threads",
            str(run.threads),
            "--warmup",
            str(run.warmup),
            "--runs",
            str(run.runs),
            "--min-secs",
            f"{run.min_secs:g}",
            "--max-secs",
            f"{run.max_secs:g}",
            *_optional("--provider", provider),
            "--out",
            self._results_arg(),
            "--json",
        ]
        identity = state.benchmark_identity(rel, runtime, run.threads, provider)
        wanted = {
            "batch": 1,
            "settings.warmup": run.warmup,
            "settings.runs": run.runs,
            "settings.min_secs": run.min_secs,
            "settings.max_secs": run.max_secs,
            "settings.data": None,
        }
        self._measure(
            f"benchmark {m.key} {variant} {fmt}", "benchmark", m, variant, fmt, artifact, argv, identity, wanted
        )

    def evaluate(self, m: ModelSettings, variant: str, fmt: str, artifact: Path) -> None:
        run, runtime = self.run, config.RUNTIMES[fmt]
        limit = run.eval_limit_for(m)
        rel = str(artifact)
        argv = [
            "evaluate",
            rel,
            "--data",
            DATASET,
            *_optional("--limit", limit),
            "--runtime",
            runtime,
            "--threads",
            str(run.threads),
            "--out",
            self._results_arg(),
            "--json",
        ]
        identity = state.evaluate_identity(rel, runtime, run.threads)
        wanted = {"data.name": f"{DATASET}/test", "split": "test", "batch_size": 32}
        self._measure(
            f"evaluate {m.key} {variant} {fmt}",
            "evaluate",
            m,
            variant,
            fmt,
            artifact,
            argv,
            identity,
            wanted,
            limit=limit,
        )

    def _measure(self, step, kind, m, variant, fmt, artifact, argv, identity, wanted, limit=None) -> None:
        facts = {"variant": variant, "format": fmt}
        manifest = state.read_json((self.paths.workdir / artifact).with_name("manifest.json")) or {}
        sha256 = manifest.get("sha256")
        if not self.run.force and sha256:
            row = self.results.find(identity, sha256, wanted)
            if row is not None and (kind != "evaluate" or _evaluated_all(row, limit)):
                self._record(step, kind, m.key, "skipped", argv=argv, **facts)
                return
        self.results.forget(identity)  # the row measured now replaces any older one
        outcome = self._execute(step, argv)
        facts["log"] = self._log_name(outcome)
        if outcome.reason is None:
            facts.update(_summary(kind, outcome.stdout))
        self._record(
            step, kind, m.key, outcome.status, argv=argv, seconds=outcome.seconds, reason=outcome.reason, **facts
        )

    # -- one model -------------------------------------------------------------------------
    def model(self, m: ModelSettings) -> None:
        names = [v for v in config.IMAGENET_VARIANTS if v in self.run.variants] if m.imagenet else self.run.variants
        variants = [config.VARIANTS[name] for name in names]
        sources: dict[str, Path | None] = {}
        if m.trained:
            sources["trained"] = self.train(m)
            if any(v.source == "pruned" for v in variants):
                if sources["trained"] is None:
                    self._blocked(f"prune {m.key}", "prune", m.key, f"train {m.key}")
                    sources["pruned"] = None
                else:
                    sources["pruned"] = self.prune(m, sources["trained"])
        made = []
        for variant in variants:
            source = sources.get(variant.source) if m.trained else None
            if m.trained and source is None:
                needs = f"train {m.key}" if variant.source == "trained" else f"prune {m.key}"
                for fmt in self.run.formats:
                    self._blocked(self._export_step(m, variant, fmt), "export", m.key, needs)
                continue
            artifacts = self.export(m, variant, source)
            made += [(variant.name, fmt, artifacts[fmt]) for fmt in self.run.formats if fmt in artifacts]
        for variant, fmt, artifact in made:
            self.benchmark(m, variant, fmt, _relative(artifact, self.paths.workdir))
            if m.trained:
                self.evaluate(m, variant, fmt, _relative(artifact, self.paths.workdir))
        gone = self.results.forget_missing(str(Path("artifacts") / m.key), self.paths.workdir)
        if gone:
            log(f"{m.key}: {gone} row(s) of artifacts that no longer exist removed from results.jsonl")


def published(folder: Path, formats, settings, options, qat) -> dict[str, Path]:
    """{format: artifact} for each format with one artifact folder whose manifest records the
    options asked for; each gets its stamp."""
    found = {}
    for fmt in formats:
        hits = state.artifact_manifests(folder, fmt)
        if len(hits) == 1 and state.manifest_agrees(*hits[0], options, qat):
            state.write_export_stamp(folder, fmt, settings, hits[0][1])
            found[fmt] = hits[0][0]
    return found


def _evaluated_all(row: dict, limit: int | None) -> bool:
    count = (row.get("data") or {}).get("count")
    expected = count if limit is None else min(limit, count or limit)
    return row.get("n") == expected


def _summary(kind: str, stdout: str) -> dict:
    """The figures worth a glance in the suite log (the full rows are in results.jsonl)."""
    try:
        payload = json.loads(stdout)
    except ValueError:
        return {}
    row = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(row, dict):
        return {}
    if kind == "benchmark":
        return {"p50_ms": (row.get("latency_ms") or {}).get("p50"), "sha256": row.get("sha256")}
    return {"top1": row.get("top1"), "n": row.get("n"), "sha256": row.get("sha256")}


def _optional(flag: str, value) -> list[str]:
    if value is None:
        return []
    return [flag, f"{value:g}" if isinstance(value, float) else str(value)]


def _relative(path: Path, base: Path) -> Path:
    path = Path(path)
    return path.relative_to(base) if path.is_absolute() else path
