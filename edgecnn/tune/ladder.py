"""The ladder, per format, cheapest first; stop after the first step with a candidate within
budget on validation.

1. full int8, per-channel weights, default calibration (the first 100 calibration images, as
   `edgecnn export` calibrates);
2. calibration variants on the whole calibration part: TFLite more samples, AI Edge Quantizer's
   min/max range update and MSE/OCTAV weight ranges; ONNX Runtime minmax/entropy/percentile;
3. per-layer sensitivity (`edgecnn.numerics.layer_errors` of the best candidate so far against
   the float file, on validation images), then the k most sensitive layers kept float, k = 1, 2,
   ... up to `max_float_layers`;
4. quantization-aware fine-tuning (TFLite) on the training part, when allowed.

Every candidate is measured the same way: its size, validation and test top-1 in its own
runtime (`edgecnn.evaluate.evaluate_artifact`), latency through the harness (its own process,
the benchmark_model method), and whether it is integer-only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.progress import Progress  # noqa: F401  (re-exported: the protocol callers pass)

DEFAULT_CALIBRATION_IMAGES = 100  # edgecnn export's --calib-samples


@dataclass
class Candidate:
    id: str
    format: str
    step: int
    label: str
    settings: dict
    float_layers: list[str] = field(default_factory=list)
    path: str | None = None
    bytes: int | None = None
    val_top1: float | None = None
    test_top1: float | None = None
    val_drop: float | None = None  # points (percent) below the float reference, on validation
    test_drop: float | None = None
    latency_ms: float | None = None  # harness p50
    latency: dict | None = None
    integer_only: bool | None = None
    float_ops: int | None = None
    within_budget: bool = False
    seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FormatRun:
    """What one format's ladder did."""

    format: str
    float_path: Path
    reference_path: Path  # the float file numerics compare against (ONNX: the prepared graph)
    float_val_top1: float
    float_test_top1: float
    float_bytes: int
    float_latency_ms: float | None
    candidates: list[Candidate] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    sensitivity: list[dict] = field(default_factory=list)
    stopped: str | None = None


class Ladder:
    """One format's ladder. `ctx` gives the data, the measuring functions and the clock."""

    def __init__(self, fmt: str, ctx, run: FormatRun, progress: Progress):
        self.fmt, self.ctx, self.run, self.progress = fmt, ctx, run, progress
        if fmt == "tflite":
            from edgecnn.tune import engines_tflite as engine
        else:
            from edgecnn.tune import engines_onnx as engine
        self.engine = engine

    # -- measuring ------------------------------------------------------------------------
    def _make(
        self, cid: str, step: int, label: str, build: Callable[[], tuple[bytes, dict]], float_layers=()
    ) -> Candidate:
        started = time.perf_counter()
        cand = Candidate(cid, self.fmt, step, label, {}, list(float_layers))
        try:
            data, settings = build()
            cand.settings = settings
            path = self.ctx.workdir / f"{cid}.{self.fmt}"
            path.write_bytes(data)
            cand.path, cand.bytes = str(path), len(data)
            self.ctx.measure(cand, self.run)
        except EdgecnnError as exc:
            cand.error = str(exc)
            self.progress.warn(f"{self.fmt} candidate `{label}` failed: {exc}")
        cand.seconds = round(time.perf_counter() - started, 2)
        self.ctx.observe(cand.seconds)
        self.run.candidates.append(cand)
        self.progress.advance()
        return cand

    def _within(self) -> list[Candidate]:
        return [c for c in self.run.candidates if c.within_budget]

    def _out_of_time(self, remaining: int) -> bool:
        if self.ctx.out_of_time(remaining):
            self.run.stopped = (
                f"--time-budget {self.ctx.request.time_budget:g} min: stopped before "
                f"step {len(self.run.steps) + 1} with {remaining} candidate(s) left"
            )
            self.progress.warn(f"{self.fmt}: {self.run.stopped}")
            return True
        return False

    def _step(self, number: int, title: str, plans: list[tuple[str, str, Callable, list]]) -> bool:
        """Run one step's candidates; True when one is within budget (the ladder stops)."""
        if not plans:
            self.run.steps.append({"step": number, "title": title, "candidates": [], "skipped": "nothing to try"})
            return False
        self.progress.step(f"{self.fmt} step {number}: {title}", len(plans))
        ids = []
        for i, (cid, label, build, floats) in enumerate(plans):
            # Step 1 always runs: without plain int8 there is nothing to choose or compare with.
            if number > 1 and self._out_of_time(len(plans) - i):
                break
            ids.append(self._make(cid, number, label, build, floats).id)
        self.run.steps.append({"step": number, "title": title, "candidates": ids})
        return bool(self._within())

    def _best(self) -> Candidate | None:
        done = [c for c in self.run.candidates if c.error is None and c.val_drop is not None]
        return min(done, key=lambda c: (c.val_drop, c.latency_ms or math.inf)) if done else None

    # -- the steps ------------------------------------------------------------------------
    def _quantizer(self, calibration: np.ndarray, **kw):
        if self.fmt == "tflite":
            return lambda: self.engine.quantize(
                self.run.float_path, calibration, threads=self.ctx.request.threads, **kw
            )
        return lambda: self.engine.quantize(self.run.reference_path, calibration, **kw)

    def climb(self) -> FormatRun:
        ctx = self.ctx
        calib_all = ctx.calibration
        calib_default = calib_all[:DEFAULT_CALIBRATION_IMAGES]
        n_default, n_all = len(calib_default), len(calib_all)
        f = self.fmt
        # 1. plain int8
        if f == "tflite":
            plan1 = [
                (f"{f}-1-int8", f"int8, moving-average ranges, {n_default} images", self._quantizer(calib_default), [])
            ]
        else:
            plan1 = [
                (
                    f"{f}-1-int8",
                    f"int8, minmax, {n_default} images",
                    self._quantizer(calib_default, method="minmax"),
                    [],
                )
            ]
        if self._step(1, "full int8, per-channel weights, default calibration", plan1):
            return self.run
        if not [c for c in self.run.candidates if c.error is None]:
            raise EdgecnnError(f"the toolkit cannot quantize this model to {f} int8: {self.run.candidates[0].error}")
        # 2. calibration variants
        plan2 = []
        if f == "tflite":
            if n_all > n_default:
                plan2.append(
                    (f"{f}-2-samples", f"int8, moving-average ranges, {n_all} images", self._quantizer(calib_all), [])
                )
            plan2 += [
                (
                    f"{f}-2-minmax",
                    f"int8, min/max ranges, {n_all} images",
                    self._quantizer(calib_all, qsv_update="min_max"),
                    [],
                ),
                (
                    f"{f}-2-mse",
                    f"int8, MSE weight ranges, {n_all} images",
                    self._quantizer(calib_all, weight_algorithm="mse"),
                    [],
                ),
                (
                    f"{f}-2-octav",
                    f"int8, OCTAV weight ranges, {n_all} images",
                    self._quantizer(calib_all, weight_algorithm="octav"),
                    [],
                ),
            ]
        else:
            if n_all > n_default:
                plan2.append(
                    (f"{f}-2-minmax", f"int8, minmax, {n_all} images", self._quantizer(calib_all, method="minmax"), [])
                )
            plan2 += [
                (f"{f}-2-{m}", f"int8, {m}, {n_all} images", self._quantizer(calib_all, method=m), [])
                for m in ("entropy", "percentile")
            ]
        if self._step(2, "calibration variants", plan2) or self.run.stopped:
            return self.run
        # 3. sensitivity: keep the k most sensitive layers float
        if self._sensitivity_step() or self.run.stopped:
            return self.run
        # 4. QAT
        self._qat_step()
        return self.run

    def _sensitivity_step(self) -> bool:
        best = self._best()
        limit = int(self.ctx.request.max_float_layers)
        if best is None or limit < 1:
            self.run.steps.append(
                {
                    "step": 3,
                    "title": "per-layer sensitivity",
                    "candidates": [],
                    "skipped": "no candidate to measure" if best is None else "max_float_layers is 0",
                }
            )
            return False
        if self._out_of_time(1):
            return False
        try:
            from edgecnn.numerics import layer_errors
        except ImportError as exc:
            self.run.steps.append(
                {
                    "step": 3,
                    "title": "per-layer sensitivity",
                    "candidates": [],
                    "skipped": f"edgecnn.numerics unavailable: {exc}",
                }
            )
            return False
        from edgecnn.tune.sensitivity import float_set, rank

        self.progress.step(f"{self.fmt} step 3: per-layer error of {best.id}", None)
        try:
            errors = layer_errors(best.path, self.run.reference_path, self.ctx.sensitivity_images)
        except EdgecnnError as exc:
            self.run.steps.append(
                {"step": 3, "title": "per-layer sensitivity", "candidates": [], "skipped": f"numerics failed: {exc}"}
            )
            return False
        ops = self.engine.graph(self.run.reference_path)
        ranked = rank(errors, ops, self.engine.PASS_THROUGH)
        base = dict(best.settings)
        calibration = self.ctx.calibration[: base.get("calibration_images", len(self.ctx.calibration))]
        plans, previous = [], None
        for k in range(1, min(limit, len(ranked)) + 1):
            floats = float_set(ranked, k)
            if floats == previous:
                continue
            previous = floats
            if self.fmt == "tflite":
                build = self._quantizer(
                    calibration,
                    qsv_update=base.get("range_update", "moving_average"),
                    weight_algorithm=_weight_key(base.get("weight_algorithm")),
                    float_tensors=floats,
                )
            else:
                build = self._quantizer(
                    calibration, method=base.get("calibrate_method", "minmax"), nodes_to_exclude=floats
                )
            plans.append((f"{self.fmt}-3-k{k}", f"{best.label}; {k} most sensitive layer(s) float", build, floats))
        self.progress.step(f"{self.fmt} step 3: k most sensitive layers float", len(plans))
        ids = []
        for i, (cid, label, build, floats) in enumerate(plans):
            if self._out_of_time(len(plans) - i):
                break
            cand = self._make(cid, 3, label, build, floats)
            ids.append(cand.id)
            if cand.within_budget:  # growing k stops at the first that holds
                break
        kept = set(self._best_float_layers(ids))
        for entry in ranked:
            entry.kept_float = entry.layer in kept
        self.run.sensitivity = [e.to_dict() for e in ranked]
        self.run.steps.append(
            {
                "step": 3,
                "title": "per-layer sensitivity, k most sensitive layers float",
                "measured_on": best.id,
                "images": len(self.ctx.sensitivity_images),
                "limit": limit,
                "candidates": ids,
            }
        )
        return bool(self._within())

    def _best_float_layers(self, ids) -> list[str]:
        cands = [c for c in self.run.candidates if c.id in ids and c.error is None]
        within = [c for c in cands if c.within_budget]
        pick = within[0] if within else (min(cands, key=lambda c: c.val_drop) if cands else None)
        return pick.float_layers if pick else []

    def _qat_step(self) -> bool:
        request = self.ctx.request
        if self.fmt != "tflite":
            return False
        if not self.ctx.qat_allowed:
            self.run.steps.append(
                {"step": 4, "title": "quantization-aware fine-tuning", "candidates": [], "skipped": self.ctx.qat_reason}
            )
            return False
        plans = [
            (
                f"{self.fmt}-4-qat",
                f"QAT {request.qat_epochs} epoch(s) on the training part, int8",
                self.ctx.qat_build,
                [],
            )
        ]
        return self._step(4, "quantization-aware fine-tuning", plans)


def _weight_key(algorithm: str | None) -> str:
    return {"MSE": "mse", "OCTAV": "octav"}.get(algorithm or "", "min_max")
