#!/usr/bin/env python
"""Where one conversion's memory goes: RSS before and after, and the peak during, each step
inside tf2onnx's from_keras and TFLiteConverter's convert.

    python benchmarks/export_memory_steps.py MODEL {onnx|tflite} [--quantization int8] [--out FILE]

Builds the zoo model as `edgecnn export` does (random weights, seed 0, default input), then
converts it with converters.onnx.keras_to_onnx or converters.tflite.keras_to_tflite, each
step of the converter wrapped by a probe that reads VmRSS and VmHWM from /proc/self/status
at its start and end and resets the high-water mark (/proc/self/clear_refs, Linux 4.0+), so
each line's `peak` is the largest RSS since the previous probe. Prints one line per probe
event, nested steps indented (JSON with --out). A measurement aid for
benchmarks/results/*/export_memory.md, not part of the toolkit; Linux only.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

EVENTS: list[dict] = []
_DEPTH = [0]


def _status() -> tuple[int, int]:
    rss = hwm = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) // 1024
    return rss, hwm


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def mark(label: str, phase: str) -> None:
    rss, hwm = _status()
    EVENTS.append(
        {
            "step": label,
            "phase": phase,
            "depth": _DEPTH[0],
            "rss_mb": rss,
            "peak_mb": hwm,
            "t": round(time.perf_counter(), 2),
        }
    )
    print(
        f"{'  ' * _DEPTH[0]}{phase:5} {label:60} rss {rss:6} MB  peak since last {hwm:6} MB",
        file=sys.stderr,
        flush=True,
    )
    _reset_peak()


def probe(owner, attr: str, label: str | None = None) -> None:
    """Wrap `owner.attr` (a function or method) with start/end marks."""
    original = getattr(owner, attr)
    label = label or f"{getattr(owner, '__name__', type(owner).__name__)}.{attr}"

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        mark(label, "start")
        _DEPTH[0] += 1
        try:
            return original(*args, **kwargs)
        finally:
            _DEPTH[0] -= 1
            mark(label, "end")

    setattr(owner, attr, wrapped)


def probe_onnx() -> None:
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import convert, optimizer, tf_loader, tfonnx
    from tf2onnx.graph import Graph

    import converters.fold_batchnorm as fold
    import converters.onnx as ours

    probe(fold, "fold_batchnorm")
    probe(convert, "_get_concrete_function")
    probe(tf_loader, "from_trackable")
    probe(tf_loader, "from_function")
    probe(tf_loader, "convert_variables_to_constants_large_model")
    probe(tf_loader, "convert_variables_to_constants_v2")
    probe(tf_loader, "fix_freezing_errors_part2")
    probe(tf_loader, "tf_optimize")
    probe(tf_loader, "tf_optimize_grappler")
    probe(tf.compat.v1.train, "export_meta_graph")
    probe(tf, "import_graph_def")
    from tensorflow.python.grappler import tf_optimizer

    probe(tf_optimizer, "OptimizeGraph")
    probe(convert, "_convert_common")
    probe(convert, "process_tf_graph")
    probe(tfonnx, "process_parsed_graph")
    probe(optimizer, "optimize_graph")
    probe(Graph, "make_model")
    probe(ours, "_canonical")
    if hasattr(ours, "_weights_held_out"):
        probe(ours._HeldValues, "__getitem__", "held-out weight read")
    del tf2onnx


def probe_tflite() -> None:
    from tensorflow.lite.python import lite

    cls = lite.TFLiteKerasModelConverterV2
    probe(cls, "_convert_keras_to_saved_model")
    probe(lite._save, "save", "saved_model.save")
    probe(cls, "_load_saved_model")
    probe(lite, "_load", "saved_model.load")
    probe(cls, "_freeze_keras_model")
    probe(lite, "_convert_graphdef")
    probe(lite.TFLiteConverterBase, "_optimize_tflite_model")
    probe(lite._calibrator, "add_intermediate_tensors")
    probe(lite._calibrator.Calibrator, "__init__", "Calibrator.__init__")
    probe(lite._calibrator.Calibrator, "calibrate")
    probe(lite._calibrator.Calibrator, "calibrate_and_quantize")
    probe(lite, "_mlir_quantize")
    probe(lite, "_modify_model_io_type")
    probe(lite, "_deduplicate_readonly_buffers")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("format", choices=("onnx", "tflite"))
    parser.add_argument("--quantization", default="int8")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--calib-samples", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    mark("process", "start")
    from edgecnn._tf import import_keras
    from edgecnn.models import create_model, get_model_info

    keras = import_keras()
    import numpy as np

    mark("import", "end")
    info = get_model_info(args.model)
    shape = info.default_input_shape
    if args.input_size:
        shape = (args.input_size, args.input_size, shape[-1])
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = create_model(info.name, weights=None, input_shape=shape)
    params = int(model.count_params())
    mark(f"build ({params / 1e6:.1f}M params, {4 * params / 2**20:.0f} MB float32)", "end")
    rng = np.random.default_rng(0)
    samples = [rng.uniform(-1, 1, (1, *shape)).astype("float32") for _ in range(args.calib_samples)]
    if args.format == "onnx":
        probe_onnx()
        from converters.onnx import keras_to_onnx

        mark("keras_to_onnx", "start")
        data = keras_to_onnx(model)
        mark("keras_to_onnx", "end")
    else:
        probe_tflite()
        from converters.tflite import keras_to_tflite

        def dataset():
            for sample in samples:
                yield [sample]

        mark("keras_to_tflite", "start")
        data = keras_to_tflite(
            model,
            quantization=args.quantization,
            representative_dataset=dataset if args.quantization in ("int8", "int16x8") else None,
        )
        mark("keras_to_tflite", "end")
    data = data[0] if isinstance(data, tuple) else data  # (bytes, record) where the converter gives both
    print(f"{len(data) / 2**20:.1f} MB artifact", file=sys.stderr)
    if args.out:
        args.out.write_text(
            json.dumps({"model": args.model, "format": args.format, "params": params, "events": EVENTS}, indent=1)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
