"""How much memory a conversion needs at its peak, estimated before it starts.

An export that would not fit is refused in one line with the estimate and what would
lower it, instead of being killed by the kernel half-way. The figures are fitted to what
benchmarks/export_memory.py measured on this project's 24 GB build machine (peak RSS
at the end of each stage, zoo models at 224, both formats; see
benchmarks/results/*/export_memory.md): the growth over the memory in use when the
conversion starts, as a multiple of the float32 weight bytes plus a fixed part.
An estimate to refuse what cannot fit, erring high; not a figure to report.

Standard library only (no TensorFlow): the numbers come from the built model.
"""

from __future__ import annotations

from pathlib import Path

from calibration.errors import EdgecnnError

# Growth of the peak RSS over the RSS when the conversion starts: weight_factor x float32
# weight bytes + fixed bytes, an upper envelope of benchmarks/results/amd-epyc-2c-x86_64/
# export_memory.json (a process per format; growth over the `reference` stage's peak; every row
# measured since the weights are held out of tf2onnx's freezing, all five variants). Tightest:
#   TFLite: ResNet-152 int8 +3.0 GB (242 MB of weights, the envelope 3.1), VGG-19 int16x8 +3.9 GB
#           (575 MB; int16x8 still converts in one convert() call), VGG-16 int8 +3.4 GB
#   ONNX:   VGG-19 int16x8 +4.6 GB (575 MB of weights), ResNet-101 int16x8 +2.2 GB (179 MB)
# Every conversion is held to the same figure: TFLiteConverter (SavedModel, MLIR, the float
# flatbuffer, the calibrator's copy with intermediate tensors, then the quantizer; int8 after the
# converter's copies are gone) and tf2onnx (the ONNX model two or three times: its graph, the
# ModelProto, the bytes) then ONNX Runtime's pre-processing and calibration.
GROWTH_WEIGHT_FACTOR = 8.0
GROWTH_FIXED_BYTES = 1200 * 2**20
# What one process keeps of a conversion after it ends (TensorFlow does not give its
# memory back), as a multiple of the weight bytes: in one process the next format's
# conversion starts on top of it (AlexNet's TFLite int8 conversion kept 1.13 GB, 4.8x).
RETAINED_WEIGHT_FACTOR = 5.0
# ONNX Runtime's histogram calibrators (entropy, percentile) keep every calibrated tensor of
# every image they are given until they bin them: the bytes of every activation an image
# (MobileNetV2 at 224: 87 MB; 100 images at once took it past 7.5 GB). converters.onnx gives
# them all images at once (ORT's way, the same bytes as before) while that holds at most
# HISTOGRAM_BUDGET_BYTES, else a chunk at a time (`histogram_stride`): memory bounded by the
# budget, not by --calib-samples. Chunks change the ranges a little (histograms merged chunk by
# chunk: benchmarks/histogram_chunks.py), so the budget is a constant, never the machine's
# free memory: the same command gives the same bytes everywhere.
HISTOGRAM_METHODS = frozenset({"entropy", "percentile"})
HISTOGRAM_BUDGET_BYTES = 2 * 2**30


def histogram_stride(samples: int, image_bytes: int) -> int:
    """Images per histogram pass: all `samples` where they fit HISTOGRAM_BUDGET_BYTES, else the
    largest divisor of `samples` (ONNX Runtime's strided loop wants one) whose images fit it.
    EDGECNN_HISTOGRAM_BUDGET_MB sets another budget (benchmarks/histogram_chunks.py)."""
    import os

    samples = max(int(samples), 1)
    budget = os.environ.get("EDGECNN_HISTOGRAM_BUDGET_MB")
    budget = float(budget) * 2**20 if budget else HISTOGRAM_BUDGET_BYTES
    fits = max(int(budget // max(int(image_bytes), 1)), 1)
    if samples <= fits:
        return samples
    return next(d for d in range(fits, 0, -1) if samples % d == 0)


def _histogram_calibrated(quantization: str, calib_method: str) -> bool:
    """Whether an ONNX conversion of `quantization` calibrates with a histogram method."""
    return quantization in ("int8", "int16x8") and calib_method in HISTOGRAM_METHODS


def estimate_peak_bytes(
    *,
    params: int,
    quantization: str,
    formats: tuple[str, ...],
    calib_method: str,
    calib_samples: int,
    activation_bytes: int,
    current_rss: int,
    one_process: bool,
) -> int:
    """The process's estimated peak RSS while converting `formats`.

    With `one_process`, the formats convert one after the other in this process (each
    starting on what the previous one kept); otherwise each in a process of its own,
    which starts from the RSS this one has now.
    """
    weights = 4 * int(params)
    histograms = _histogram_calibrated(quantization, calib_method)
    peaks = []
    kept = 0
    for fmt in formats:
        need = GROWTH_WEIGHT_FACTOR * weights + GROWTH_FIXED_BYTES
        if fmt == "onnx" and histograms:
            need += histogram_stride(calib_samples, activation_bytes) * activation_bytes
        peaks.append(current_rss + kept + need)
        if one_process:
            kept += RETAINED_WEIGHT_FACTOR * weights
    return int(max(peaks))


def available_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def check_export_memory(
    *,
    params: int,
    quantization: str,
    formats: tuple[str, ...],
    calib_method: str,
    calib_samples: int,
    activation_bytes: int,
    current_rss: int | None,
    one_process: bool,
    available: int | None = None,
) -> int | None:
    """Raise EdgecnnError (exit 1) when the estimated peak exceeds the memory available.

    Available is this process's RSS plus MemAvailable (what it may still take). Returns
    the estimate, or None where the machine does not say what is available.
    """
    available = available_bytes() if available is None else available
    if available is None or current_rss is None:
        return None
    peak = estimate_peak_bytes(
        params=params,
        quantization=quantization,
        formats=formats,
        calib_method=calib_method,
        calib_samples=calib_samples,
        activation_bytes=activation_bytes,
        current_rss=current_rss,
        one_process=one_process,
    )
    room = current_rss + available
    if peak <= room:
        return peak
    remedies = []
    if len(formats) > 1:
        remedies.append(f"export one format at a time (--format {formats[0]}, then --format {formats[1]})")
    if "onnx" in formats and _histogram_calibrated(quantization, calib_method):
        held = histogram_stride(calib_samples, activation_bytes)
        remedies.append(
            f"use --calib-method minmax (--calib-method {calib_method} holds the activations of "
            f"{held} image{'s' if held > 1 else ''} at once, {held * activation_bytes / 1e6:,.0f} MB)"
        )
    remedies.append("free memory (other programs use the rest)")
    raise EdgecnnError(
        f"this export needs about {_gb(peak)} of memory at its peak (estimated from "
        f"{params / 1e6:,.1f}M parameters, {_gb(current_rss)} in use now), only "
        f"{_gb(room)} can be had; " + ", or ".join(remedies)
    )
