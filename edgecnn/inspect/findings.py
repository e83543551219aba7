"""Findings: a short ranked list of plain sentences, each backed by the report's figures, each with
what to do. Every rule reads only the report dict, so `--json` output can be re-judged later."""

from __future__ import annotations

from collections import Counter


def _types(rows, key="op_type") -> str:
    counts = Counter(r[key] for r in rows)
    return ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.most_common(6))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 else f"{100 * x:.1f}%"


def findings(report: dict) -> list[dict]:
    graph, runtime, prof = report["graph"], report["runtime"], report.get("profile")
    hardware, numerics = report["hardware"], report.get("numerics")
    fmt = report["artifact"]["format"]
    found: list[tuple[float, dict]] = []

    def add(score: float, kind: str, text: str, action: str, **figures) -> None:
        found.append((score, {"kind": kind, "text": text, "action": action, "figures": figures}))

    macs = graph.get("macs") or 0
    by_type_time = {r["op_type"]: r for r in (prof or {}).get("by_op_type", [])}
    total_ms = (prof or {}).get("total_ms") or 0.0

    # 1. float ops inside a quantized graph
    float_ops = graph["float_ops"]
    if fmt == "onnx":
        unfused = runtime.get("unfused", [])
        if unfused:
            ms = (prof or {}).get("unfused_ms")
            share = f": {ms:.3f} ms, {_pct(ms / total_ms)} of the time" if ms and total_ms else ""
            add(
                90 + len(unfused),
                "unfused_qdq",
                f"{len(unfused)} ops ({_types(unfused)}) still run in float between DequantizeLinear and "
                f"QuantizeLinear after ONNX Runtime's own optimization{share}.",
                "ONNX Runtime has no fused int8 kernel for these op types in this form: leave them out of "
                "quantization (op_types_to_quantize / nodes_to_exclude) to drop the Q/DQ round trips, or change "
                "what blocks the fusion (u8/s8 types, per-channel on depthwise, opset).",
                ops=len(unfused),
                ms=ms,
            )
        float_after = runtime.get("float_ops_after_optimization", [])
        names = {op["name"] for op in unfused}
        others = [op for op in float_after if op["name"] not in names]
        if graph["quantized"] and others:
            add(
                70 + len(others),
                "float_ops",
                f"{len(others)} ops ({_types(others)}) compute in float inside this quantized graph after "
                "optimization.",
                "quantize them too, or move them to the end of the model where float costs least.",
                ops=len(others),
            )
    elif graph["quantized"] and float_ops:
        share = sum(op["macs"] or 0 for op in float_ops) / macs if macs else 0.0
        conv = graph["conversions"]
        add(
            90 + len(float_ops),
            "float_ops",
            f"{len(float_ops)} ops ({_types(float_ops)}) compute in float inside this int8 graph, behind "
            f"{conv.get('DEQUANTIZE', 0)} DEQUANTIZE and {conv.get('QUANTIZE', 0)} QUANTIZE ops"
            + (f"; they hold {_pct(share)} of the multiply-adds" if share else "")
            + ".",
            "give these ops an int8 kernel (an int8-capable op in the model, or the converter's "
            "TFLITE_BUILTINS_INT8 to fail loudly instead of falling back), or accept the float islands.",
            ops=len(float_ops),
            macs_share=round(share, 4),
        )
    weights = graph["weights"]
    if not graph["quantized"] and weights.get("int8"):
        add(
            45,
            "weight_only",
            f"{weights['int8']} of {weights['tensors']} weight tensors are int8 but every op takes float "
            "activations (dynamic-range or weight-only quantization): a quarter of the weight bytes, float "
            "compute, plus the cost of (de)quantizing on the fly.",
            "for int8 compute, export full integer quantization with calibration data (edgecnn export --int8).",
            int8_weights=weights["int8"],
        )
    elif not graph["quantized"]:
        dtype = graph["ops_by_type"][0]["compute_dtype"] if graph["ops_by_type"] else "float"
        add(
            40,
            "float_graph",
            f"The graph computes in {dtype} throughout: no integer op.",
            "export with --int8 for int8 kernels and weights a quarter of the size (edgecnn export --int8).",
        )

    # 2. delegation (TFLite)
    if fmt == "tflite":
        staying = [{"op_type": r["op_type"]} for r in runtime.get("default_kernels", []) for _ in range(r["count"])]
        if runtime.get("default_kernel_ops") and not runtime.get("delegated_ops"):
            add(
                85,
                "not_delegated",
                f"XNNPACK took none of the {graph['ops']} ops: all run on LiteRT's default kernels "
                f"({_types(staying)}).",
                "XNNPACK has no kernels for these ops or types (int16 activations, control flow): expect "
                "reference-kernel speed; use int8 or float32 ops where XNNPACK should run them.",
                ops=runtime["default_kernel_ops"],
                partitions=0,
            )
        elif runtime.get("default_kernel_ops"):
            share = runtime["default_kernel_macs"] / macs if macs else 0.0
            # A few ops at the end, holding no multiply-adds, cost one hand-over: rank by what they hold.
            add(
                15 + 70 * share + 10 * (runtime["partitions"] - 1),
                "not_delegated",
                f"{runtime['default_kernel_ops']} of {graph['ops']} ops ({_types(staying)}) stay on LiteRT's "
                f"default kernels; XNNPACK took the rest in {runtime['partitions']} partition(s)"
                + (f"; the default kernels hold {_pct(share)} of the multiply-adds" if share else "")
                + ".",
                "each partition boundary costs a hand-over: replace those ops with ones XNNPACK supports, "
                "or move them to the end of the graph.",
                ops=runtime["default_kernel_ops"],
                partitions=runtime["partitions"],
            )
        elif runtime.get("delegate"):
            add(
                5,
                "delegated",
                f"XNNPACK runs all {graph['ops']} ops in {runtime['partitions']} partition(s).",
                "nothing to do.",
            )

    # 3. hardware
    if graph["quantized"]:
        if not hardware["int8_dot_product"]:
            add(
                75,
                "no_int8_dot",
                f"This CPU has no int8 dot-product instructions (int8 path: {hardware['int8_path']}): expect "
                "little or no int8 speed-up over float.",
                "judge int8 by size and memory here, measure speed on a CPU with "
                + (
                    "VNNI (AVX-512 VNNI, AVX-VNNI) or AMX"
                    if hardware["arch"] in ("x86_64", "amd64")
                    else "dot product (asimddp, e.g. Cortex-A55/A76)"
                )
                + ".",
            )
        else:
            add(
                10,
                "int8_dot",
                f"This CPU has int8 dot-product instructions ({hardware['int8_path']}).",
                "int8 kernels should beat float here; if they do not, the graph (above) is why.",
            )
    if fmt == "onnx" and weights["int8"] and weights["int8_within_7_bits"] == weights["int8"]:
        if hardware["int8_dot_product"] and hardware["arch"] in ("x86_64", "amd64"):
            add(
                22,
                "reduce_range",
                f"All {weights['int8']} int8 weight tensors use only 7 bits ([-64, 64], reduce_range), and this "
                f"CPU has {hardware['int8_path']}, whose int8 sums do not saturate with 8-bit weights.",
                "keep them for a file that may run anywhere: on x86 without VNNI (AVX2, AVX-512 before VNNI) "
                "8-bit weights saturate ONNX Runtime's int16 sums and change the answer (measured in "
                "benchmarks/arm/onnx_kernels.py); only a file for VNNI or Arm CPUs alone can use 8-bit weights "
                "(reduce_range=False), and whether that lowers the error is a measurement: inspect --data "
                "--reference both files.",
            )

    # 4. dynamic dimensions
    dynamic = graph["dynamic_dims"]
    inputs_dynamic = [d for d in dynamic if d["role"] == "input"]
    if inputs_dynamic:
        batch = [d for d in inputs_dynamic if d["axis"] == 0]
        what = (
            "the input batch is dynamic"
            if batch and len(inputs_dynamic) == len(batch)
            else f"{len(inputs_dynamic)} input dimensions are dynamic"
        )
        dims = ", ".join(f"{d['tensor']}[{d['axis']}]" for d in inputs_dynamic)
        add(
            20 + 5 * (len(inputs_dynamic) - len(batch)),
            "dynamic",
            f"{what[0].upper()}{what[1:]} ({dims}).",
            "runtimes then size buffers when the first input arrives and again when the shape changes; "
            "fix the shape at export where the deployment feeds one size (batch 1).",
        )

    # 5. time
    if prof is not None and not prof.get("available"):
        add(
            15,
            "no_profiler",
            prof["note"] + ".",
            "use benchmark_model for per-op times of .tflite files."
            if fmt == "tflite"
            else "fix the input's dimensions (at export, or in a manifest beside the file) to profile it.",
        )
    if prof and prof.get("available") and by_type_time:
        top = max(by_type_time.values(), key=lambda r: r["ms"])
        add(
            30,
            "time",
            f"{top['op_type']} takes {_pct(top['share'])} of the per-op time ({top['ms']:.3f} of "
            f"{total_ms:.3f} ms, {top['nodes']} nodes).",
            "this is where a faster kernel or a smaller layer pays.",
        )
        ratio = prof.get("total_over_p50")
        harness = prof.get("harness") or {}
        if ratio is not None:
            span = prof.get("model_run_p50_ms")
            add(
                12,
                "tie",
                f"The per-op total ({total_ms:.3f} ms) is {_pct(ratio)} of the benchmark's p50 "
                f"({harness.get('p50_ms')} ms, same file and threads, profiler off)"
                + (
                    f" and {_pct(total_ms / span)} of ONNX Runtime's own run span with the profiler on ({span} ms)"
                    if span
                    else ""
                )
                + ".",
                "the profiler's own cost per node inflates small nodes: compare shares, and latency with "
                "edgecnn benchmark.",
            )

    # 6. numerics
    if numerics and report["artifact"].get("weights") == "random":
        add(
            58,
            "random_weights",
            "The manifest says the weights are random: the per-layer error and the top-1 "
            "agreement below describe a model that has learned nothing.",
            "inspect the numerics of a trained model (edgecnn export MODEL.keras, or --weights).",
        )
    if numerics:
        layers = [layer for layer in numerics["layers"] if isinstance(layer["sqnr_db"], (int, float))]
        if layers:
            worst = min(layers, key=lambda layer: layer["sqnr_db"])
            finite = sorted(layer["sqnr_db"] for layer in layers)
            median = finite[len(finite) // 2]
            add(
                60 if worst["sqnr_db"] < 20 else 25,
                "numerics",
                f"The lowest per-layer SQNR is {worst['sqnr_db']:.1f} dB at {worst['name']} ({worst['op_type']}); "
                f"the median layer has {median:.1f} dB.",
                "keep that layer in float or give it int16 activations (edgecnn tune searches this), "
                "or calibrate on more, representative images.",
                layer=worst["name"],
                sqnr_db=round(worst["sqnr_db"], 2),
            )
        agreement = numerics.get("top1_agreement")
        if agreement is not None:
            top1 = numerics.get("top1")
            drop = f"; top-1 {100 * top1['quantized']:.1f}% vs float {100 * top1['reference']:.1f}%" if top1 else ""
            add(
                55 if agreement < 0.97 else 18,
                "agreement",
                f"The quantized file gives float's top-1 class on {_pct(agreement)} of {numerics['images']} "
                f"images{drop}.",
                "below ~97% look at the layers with the lowest SQNR first."
                if agreement < 0.97
                else "the quantization keeps the answers; nothing to do.",
            )

    kernels = (numerics or {}).get("kernels")
    if kernels and kernels["top1_agreement"] < 1.0:
        add(
            65,
            "kernels",
            f"ONNX Runtime's fused int8 kernels give another top-1 than the file's own QDQ arithmetic on "
            f"{round((1 - kernels['top1_agreement']) * kernels['images'])} of {kernels['images']} images "
            "(largest output difference "
            f"{kernels['max_abs_diff']:.4g}): the answer depends on which CPU's kernels run it.",
            "compare the same images on the other CPUs (x86 with and without VNNI, Arm); reduce_range or int16 "
            "activations on the layers with the lowest SQNR narrow the rounding the kernels disagree on.",
            agreement=kernels["top1_agreement"],
            max_abs_diff=kernels["max_abs_diff"],
        )
    found.sort(key=lambda item: -item[0])
    return [{"rank": rank, **item} for rank, (_, item) in enumerate(found, 1)]
