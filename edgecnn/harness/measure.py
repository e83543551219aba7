"""The timing loop of TFLite's `benchmark_model`, its statistics, and the inputs it feeds.

- Inputs are made before the loop: seeded random values in each input's own dtype and
  range, or real samples (`--data`) preprocessed and quantized as the manifest says.
- The first inference is timed apart, then at least `warmup` runs and at least
  `warmup_secs` seconds of warm-up (benchmark_model's `warmup_runs` and `warmup_min_secs`),
  then at least `runs` runs and at least `min_secs` seconds; each phase stops at `max_secs`. The timer wraps `invoke()`
  alone; setting the next input (only when there are several) happens outside it.
- Statistics come from every timed invoke: count, min, max, mean, std, p50, p90, p99.

numpy only (and `calibration` for image data): no TensorFlow.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.tensors import TensorInfo, quantize


def _real_valued(info: TensorInfo, quantization: dict | None, preprocess: str | None) -> TensorInfo:
    """`info` with the scale real values are quantized with (see runtime.input_quantization)."""
    from edgecnn.runtime import input_quantization

    q = quantization or {}
    return input_quantization(
        info, scale=q.get("scale"), zero_point=q.get("zero_point"), preprocess=preprocess, artifact="this model"
    )


# -- statistics ------------------------------------------------------------------------


def latency_stats(times_s) -> dict:
    """count, min, max, mean, std, p50, p90, p99 in milliseconds (numpy's linear percentiles)."""
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timings")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "count": int(ms.size),
        "min": round(float(ms.min()), 4),
        "max": round(float(ms.max()), 4),
        "mean": round(float(ms.mean()), 4),
        "std": round(float(ms.std()), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (ru_maxrss: KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(peak / divisor, 1)


# -- the loop --------------------------------------------------------------------------


@dataclass
class Timing:
    first_s: float
    warmup_s: list[float]
    times_s: list[float]
    loop_s: float
    stopped_by: str  # "runs" (runs and min_secs both reached) or "max_secs"
    warmup_stopped_by: str | None = None  # "runs" or "max_secs"; None without warm-up
    outputs: list = field(default_factory=list, repr=False)


def should_stop(count: int, elapsed: float, *, runs: int, min_secs: float, max_secs: float) -> str | None:
    """benchmark_model's rule: at least `runs` runs and `min_secs` seconds, at most `max_secs`."""
    if count >= runs and elapsed >= min_secs:
        return "runs"
    if elapsed >= max_secs:
        return "max_secs"
    return None


def time_invokes(
    session,
    feeds,
    *,
    warmup: int,
    runs: int,
    min_secs: float,
    max_secs: float,
    warmup_secs: float = 0.0,
    phase=lambda name: None,
    clock=time.perf_counter,
) -> Timing:
    """Time `session.invoke()` the benchmark_model way. `feeds` is a list of input lists
    (one per prepared batch); with more than one they are set in turn between invokes.
    Warm-up runs until both `warmup` runs and `warmup_secs` seconds are done (or `max_secs`)."""
    if not feeds:
        raise ValueError("no inputs to feed")
    rotate = len(feeds) > 1
    phase("first")
    session.set_inputs(feeds[0])
    start = clock()
    session.invoke()
    first = clock() - start
    phase("warmup")
    warm: list[float] = []
    warm_stopped = None
    if warmup > 0 or warmup_secs > 0:
        warm_start = clock()
        while True:
            if rotate:
                session.set_inputs(feeds[(len(warm) + 1) % len(feeds)])
            start = clock()
            session.invoke()
            warm.append(clock() - start)
            warm_stopped = should_stop(
                len(warm), clock() - warm_start, runs=warmup, min_secs=warmup_secs, max_secs=max_secs
            )
            if warm_stopped:
                break
    phase("loop")
    times: list[float] = []
    append = times.append
    invoke = session.invoke
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside the timer is the harness's cost, not the model's
    try:
        k = len(warm) + 1
        loop_start = clock()
        while True:
            if rotate:
                session.set_inputs(feeds[k % len(feeds)])
                k += 1
            start = clock()
            invoke()
            append(clock() - start)
            stopped = should_stop(len(times), clock() - loop_start, runs=runs, min_secs=min_secs, max_secs=max_secs)
            if stopped:
                break
        loop = clock() - loop_start
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(
        first_s=first,
        warmup_s=warm,
        times_s=times,
        loop_s=loop,
        stopped_by=stopped,
        warmup_stopped_by=warm_stopped,
        outputs=session.get_outputs(),
    )


# -- inputs ----------------------------------------------------------------------------


def _dynamic(d) -> bool:
    return d is None or int(d) < 0


def input_shape(info: TensorInfo, batch: int, hint: dict | None = None) -> tuple[int, ...]:
    """The concrete shape to feed: `batch` on the first axis of a rank >= 2 input, the
    other dimensions as the model fixes them (or as the manifest's input records them)."""
    shape = list(info.shape)
    if len(shape) >= 2:
        shape[0] = batch
    hinted = list((hint or {}).get("shape") or [])
    for i, d in enumerate(shape):
        if _dynamic(d):
            if i < len(hinted) and hinted[i] is not None and i > 0:
                shape[i] = int(hinted[i])
            elif i == 0:
                shape[i] = batch
            else:
                raise EdgecnnError(
                    f"input `{info.name}` has dynamic dimensions {_shape_text(info.shape)} that no "
                    "manifest fixes: this model needs a fixed input size to be benchmarked"
                )
    return tuple(int(d) for d in shape)


def _shape_text(shape) -> str:
    return "(" + ", ".join("?" if _dynamic(d) else str(int(d)) for d in shape) + ")"


def random_array(shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Uniform over the whole range of 8/16-bit integer types, [-1, 1] for floats,
    small non-negative values for 32/64-bit integers (indices), coin flips for bool."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dt.kind in "iu":
        if dt.itemsize <= 2:
            limits = np.iinfo(dt)
            return rng.integers(limits.min, limits.max, size=shape, endpoint=True).astype(dt)
        return rng.integers(0, 10, size=shape).astype(dt)
    if dt.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dt)
    raise EdgecnnError(f"cannot make random values of dtype {dt.name}")


def _image_layout(shape: tuple[int, ...], name: str) -> str:
    if len(shape) == 4 and shape[-1] in (1, 3):
        return "NHWC"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    raise EdgecnnError(
        f"--data gives images, but input `{name}` has shape {_shape_text(shape)}: not an image "
        "batch (N, H, W, 1|3) or (N, 1|3, H, W); pass an .npy of input tensors instead"
    )


def _batches(samples: np.ndarray, batch: int) -> list[np.ndarray]:
    """Consecutive batches of `batch` samples, wrapping around, covering every sample once."""
    n = len(samples)
    count = max(1, math.ceil(n / batch))
    return [np.ascontiguousarray(samples[[(k * batch + j) % n for j in range(batch)]]) for k in range(count)]


def _npy_samples(path: Path, info: TensorInfo, shape: tuple[int, ...], quantization: dict | None = None) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
        raise EdgecnnError(f"cannot read --data {path} as a .npy array: {exc or 'the file is empty'}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        array.close()
        raise EdgecnnError(f"cannot read --data {path} as a .npy array: it is an .npz archive")
    if array.shape[1:] == shape[1:]:
        samples = array
    elif array.shape == shape[1:]:
        samples = array[None]
    else:
        raise EdgecnnError(
            f"--data {path.name} holds arrays of shape {tuple(array.shape)}; input `{info.name}` takes "
            f"{_shape_text(shape)} (samples of {_shape_text(shape[1:])})"
        )
    if len(samples) == 0:
        raise EdgecnnError(f"--data {path.name} holds no samples")
    if samples.dtype == np.dtype(info.dtype):
        return samples
    if np.issubdtype(samples.dtype, np.floating) or info.quantized:
        # real values: quantized with the input's scale/zero point (refused where none is known)
        return quantize(samples, _real_valued(info, quantization, None))
    raise EdgecnnError(f"--data {path.name} holds {samples.dtype} values; input `{info.name}` is {info.dtype}")


def _image_samples(
    data: str,
    info: TensorInfo,
    shape: tuple[int, ...],
    *,
    preprocess: dict | None,
    samples: int,
    seed: int,
    quantization: dict | None = None,
) -> np.ndarray:
    import warnings

    import calibration

    layout = _image_layout(shape, info.name)
    h, w, c = shape[1:] if layout == "NHWC" else (shape[2], shape[3], shape[1])
    if not preprocess or not preprocess.get("mode"):
        raise EdgecnnError(
            "no manifest says how to preprocess --data images for this model: pass --preprocess tf|caffe|torch|unit|raw"
        )
    info = _real_valued(info, quantization, preprocess["mode"])  # before reading any image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", calibration.CalibrationWarning)
        source = calibration.open_source(data)
        data_set = calibration.CalibrationData(
            source,
            input_shape=(h, w, c),
            preprocess=preprocess["mode"],
            samples=samples,
            seed=seed,
            crop_fraction=preprocess.get("crop_fraction"),
        )
        arrays = data_set.arrays()
    if len(arrays) == 0:
        raise EdgecnnError(f"--data {data} gave no images")
    if layout == "NCHW":
        arrays = arrays.transpose(0, 3, 1, 2)
    return quantize(arrays, info)


def _available_bytes() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # not on this OS
        return None


def check_input_memory(
    inputs: list[TensorInfo], shapes: list[tuple[int, ...]], batch: int, available: int | None = None
) -> None:
    """EdgecnnError, one line naming --batch, when the inputs alone (float32 working copies
    included) would not fit in the memory free now: refused before any array is made."""
    needed = sum(math.prod(shape) * max(4, np.dtype(info.dtype).itemsize) for info, shape in zip(inputs, shapes))
    available = _available_bytes() if available is None else available
    if available is not None and needed > available:
        raise EdgecnnError(
            f"--batch {batch}: the inputs alone need {needed / 2**30:.1f} GiB, more than the "
            f"{available / 2**30:.1f} GiB of memory free; use a smaller --batch"
        )


def make_feeds(
    inputs: list[TensorInfo],
    *,
    batch: int = 1,
    data: str | None = None,
    preprocess: dict | None = None,
    samples: int = 16,
    seed: int = 0,
    manifest_inputs: list | None = None,
    quantization: dict | None = None,
) -> tuple[list[list[np.ndarray]], list[dict]]:
    """(feeds, records): the input lists to set in turn, and what each input got.
    `quantization` ({"scale", "zero_point"}) states how an integer input holds the real values
    of --data where the model does not say."""
    hints = {i.get("name"): i for i in (manifest_inputs or []) if isinstance(i, dict)}
    shapes = [input_shape(info, batch, hints.get(info.name)) for info in inputs]
    check_input_memory(inputs, shapes, batch)
    if data is not None:
        if len(inputs) != 1:
            raise EdgecnnError(f"--data feeds models with one input; this one has {len(inputs)}")
        info, shape = inputs[0], shapes[0]
        path = Path(data).expanduser()
        if path.suffix.lower() == ".npy" and path.is_file():
            sample_arrays = _npy_samples(path, info, shape, quantization)
            kind = f"samples of {path.name}"
        else:
            sample_arrays = _image_samples(
                data, info, shape, preprocess=preprocess, samples=samples, seed=seed, quantization=quantization
            )
            kind = f"{len(sample_arrays)} images of {data}, preprocessed `{preprocess['mode']}`"
        feeds = [[b] for b in _batches(sample_arrays, batch)]
        records = [
            {"name": info.name, "shape": list(shape), "dtype": info.dtype, "values": kind, "batches": len(feeds)}
        ]
        return feeds, records
    rng = np.random.default_rng(seed)
    arrays = [random_array(shape, info.dtype, rng) for info, shape in zip(inputs, shapes)]
    records = [
        {"name": info.name, "shape": list(shape), "dtype": info.dtype, "values": f"seeded random (seed {seed})"}
        for info, shape in zip(inputs, shapes)
    ]
    return [arrays], records
