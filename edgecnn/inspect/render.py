"""The report for people: one list of blocks (a title, a table or lines), drawn as a terminal
table (rich), Markdown or one self-contained HTML page."""

from __future__ import annotations

import html

Block = tuple  # ("table", title, headers, rows) | ("lines", title, [text...])


def _si(n) -> str:
    if n is None:
        return ""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{prefix}"
    return f"{n:g}"


def _bytes(n: int) -> str:
    for factor, prefix in ((1e6, "MB"), (1e3, "kB")):
        if n >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{n} B"


def _shape(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) if shape else "scalar"


def _io(t: dict) -> str:
    q = f", scale {t['scale']:.6g}, zero point {t['zero_point']}" if t.get("scale") else ""
    return f"{t['name']}: {_shape(t['shape'])} {t['dtype']}{q}"


def _db(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else str(value)


def _short(name: str) -> str:
    """TFLite names a fused op's output after every op it fused ("a/Relu6;a/BN;a/Conv2D"): the first part
    is the layer. The JSON keeps the whole name."""
    return name.split(";")[0]


def blocks(report: dict, *, top_nodes: int = 15) -> list[Block]:
    art, graph, runtime = report["artifact"], report["graph"], report["runtime"]
    prof, hardware, numerics = report.get("profile"), report["hardware"], report.get("numerics")
    out: list[Block] = []
    origin = f"manifest: {art.get('model')!s} {art.get('quantization')!s}" if art["manifest"] else "no manifest"
    head = [
        f"{art['name']}  ({art['format']}, {_bytes(art['bytes'])}, {origin})",
        f"sha256 {art['sha256'][:16]}...",
        f"ops {graph['ops']}, params {_si(graph['params'])}, MACs {_si(graph['macs'])} (batch 1), "
        f"{'quantized' if graph['quantized'] else 'float'} graph",
    ]
    out.append(("lines", "Artifact", head))
    out.append(
        (
            "lines",
            "1. Findings (ranked; each with what to do)",
            [f"{f['rank']}. {f['text']}\n   -> {f['action']}" for f in report["findings"]],
        )
    )
    out.append(
        (
            "table",
            "2. Ops by type and compute dtype",
            ["Op", "Dtype", "Count", "MACs"],
            [
                [r["op_type"], r["compute_dtype"], str(r["count"]), _si(r["macs"]) if r["macs"] else ""]
                for r in graph["ops_by_type"]
            ],
        )
    )
    lines = [f"input  {_io(t)}" for t in graph["inputs"]] + [f"output {_io(t)}" for t in graph["outputs"]]
    conv = graph["conversions"]
    lines.append("quantize/dequantize: " + (", ".join(f"{k} x{v}" for k, v in conv.items()) or "none"))
    lines.append(
        "float ops in the quantized graph: "
        + (", ".join(f"{o['op_type']} ({_short(o['name'])})" for o in graph["float_ops"][:10]) or "none")
    )
    dyn = graph["dynamic_dims"]
    lines.append(
        "dynamic dimensions: "
        + (
            ", ".join(
                f"{d['role']} {d['tensor']}[{d['axis']}]" + (f" ({d['dim']})" if d.get("dim") else "") for d in dyn
            )
            or "none"
        )
    )
    w = graph["weights"]
    lines.append(
        f"weights: {w['tensors']} tensors, {w['int8']} int8 ({w['int8_within_7_bits']} within 7 bits), "
        f"{w['per_channel']} per-channel"
    )
    out.append(("lines", "3. Graph", lines))
    out.append(
        (
            "table",
            "4. Parameters and bytes by tensor class",
            ["Class", "Dtype", "Tensors", "Params", "Bytes"],
            [
                [r["class"], r["dtype"], str(r["tensors"]), f"{r['params']:,}", _bytes(r["bytes"])]
                for r in graph["params_by_class"]
            ],
        )
    )
    if art["format"] == "tflite":
        lines = [
            f"{runtime['runtime']} {runtime['runtime_version']}, threads {runtime['threads'] or 'default'}",
            f"delegate: {runtime['delegate'] or 'none'}, {runtime['partitions']} partition(s), "
            f"{runtime['delegated_ops']} ops delegated, {runtime['default_kernel_ops']} on the default kernels"
            + (
                ": " + ", ".join(f"{r['op_type']} x{r['count']}" for r in runtime["default_kernels"])
                if runtime["default_kernels"]
                else ""
            ),
        ]
        if runtime.get("note"):
            lines.append(runtime["note"])
        out.append(("lines", "5. Runtime", lines))
    else:
        lines = [
            f"onnxruntime {runtime['runtime_version']}, threads {runtime['threads'] or 'default'}, "
            f"{runtime['optimization_level']}",
            "providers: "
            + (", ".join(f"{k} ({v} nodes)" for k, v in runtime["providers"].items()) or runtime.get("note") or "none"),
            "fused int8 kernels: " + (", ".join(runtime["fused"]) or "none"),
            "Q/DQ left after optimization: "
            + (", ".join(f"{k} x{v}" for k, v in runtime["optimized_conversions"].items()) or "none"),
            "float ops left between DequantizeLinear and QuantizeLinear: "
            + (", ".join(f"{o['op_type']} ({o['name']})" for o in runtime["unfused"][:10]) or "none")
            + (f" and {len(runtime['unfused']) - 10} more" if len(runtime["unfused"]) > 10 else ""),
        ]
        out.append(("lines", "5. Runtime", lines))
        out.append(
            (
                "table",
                "5b. The graph ONNX Runtime runs (after its optimization)",
                ["Op", "Dtype", "Count"],
                [[r["op_type"], r["compute_dtype"], str(r["count"])] for r in runtime["optimized_ops_by_type"]],
            )
        )
    if prof is not None:
        if not prof.get("available"):
            out.append(("lines", "6. Time per op", [prof["note"]]))
        else:
            harness = prof.get("harness") or {}
            out.append(
                (
                    "table",
                    f"6. Time per op type ({prof['runs']} runs after {prof['warmup_runs']} warm-up; "
                    f"per-op total {prof['total_ms']:.3f} ms, benchmark p50 {harness.get('p50_ms')} ms)",
                    ["Op", "Nodes", "ms", "Share"],
                    [
                        [r["op_type"], str(r["nodes"]), f"{r['ms']:.4f}", f"{100 * r['share']:.1f}%"]
                        for r in prof["by_op_type"]
                    ],
                )
            )
            out.append(
                (
                    "table",
                    f"6b. Slowest nodes (top {top_nodes})",
                    ["Node", "Op", "Provider", "ms"],
                    [[n["name"], n["op_type"], n["provider"], f"{n['ms']:.4f}"] for n in prof["nodes"][:top_nodes]],
                )
            )
    feats = hardware["features"]
    out.append(
        (
            "lines",
            "7. Hardware",
            [
                f"{hardware.get('cpu')} ({hardware.get('cores')} cores, {hardware['arch']})",
                f"int8 path: {hardware['int8_path']}; "
                f"int8 dot product: {'yes' if hardware['int8_dot_product'] else 'no'}",
                "features: "
                + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in feats.items())
                + (f"; cores: {', '.join(hardware['core_types'])}" if hardware.get("core_types") else ""),
            ],
        )
    )
    if numerics is not None:
        top1 = numerics.get("top1")
        summary = (
            f"{numerics['images']} images of {numerics['data']} (preprocess {numerics['preprocess']}), "
            f"reference {numerics['reference']}; top-1 agreement {100 * numerics['top1_agreement']:.1f}%"
            + (
                f"; top-1 {100 * top1['quantized']:.1f}% vs {100 * top1['reference']:.1f}%"
                if top1
                else f"; {numerics.get('top1_note')}"
            )
        )
        kernels = numerics.get("kernels")
        if kernels:
            summary += (
                f"; fused kernels vs the file's QDQ arithmetic: top-1 {100 * kernels['top1_agreement']:.1f}%, "
                f"max |diff| {kernels['max_abs_diff']:.4g}"
            )
        out.append(
            (
                "table",
                f"8. Numerics per layer: {summary}",
                ["Tensor", "Op", "SQNR dB", "rel RMSE"],
                [
                    [
                        _short(layer["name"]),
                        layer["op_type"],
                        _db(layer["sqnr_db"]),
                        f"{layer['rel_rmse']:.4f}"
                        if isinstance(layer["rel_rmse"], (int, float))
                        else str(layer["rel_rmse"]),
                    ]
                    for layer in numerics["layers"]
                ],
            )
        )
    if report.get("warnings"):
        out.append(("lines", "Warnings", report["warnings"]))
    return out


def to_markdown(report: dict) -> str:
    parts = [f"# edgecnn inspect: {report['artifact']['name']}\n"]
    for block in blocks(report):
        if block[0] == "lines":
            items = [line.replace("\n   -> ", " *") + "*" if "\n   -> " in line else line for line in block[2]]
            parts.append(f"## {block[1]}\n\n" + "\n".join(f"- {item}" for item in items) + "\n")
        else:
            _, title, headers, rows = block
            esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            table = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
            table += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
            parts.append(f"## {title}\n\n" + "\n".join(table) + "\n")
    return "\n".join(parts)


def to_html(report: dict) -> str:
    body = [f"<h1>edgecnn inspect: {html.escape(report['artifact']['name'])}</h1>"]
    for block in blocks(report):
        body.append(f"<h2>{html.escape(block[1])}</h2>")
        if block[0] == "lines":
            body.append(
                "<ul>"
                + "".join(
                    f"<li>{html.escape(line).replace(chr(10) + '   -&gt; ', '<br><i>')}"
                    + ("</i>" if "\n   -> " in line else "")
                    + "</li>"
                    for line in block[2]
                )
                + "</ul>"
            )
        else:
            _, _, headers, rows = block
            body.append(
                "<table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in headers)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                + "</table>"
            )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgecnn inspect</title>"
        f"<style>{style}</style></head><body>" + "".join(body) + "</body></html>\n"
    )


def print_tables(report: dict, print_table, console) -> None:
    from rich.table import Table

    for block in blocks(report):
        if block[0] == "lines":
            console.print(f"[bold]{block[1]}[/bold]", highlight=False)
            for line in block[2]:
                console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
            console.print()
        else:
            _, title, headers, rows = block
            table = Table(title=title, title_justify="left")
            for h in headers:
                table.add_column(h, overflow="fold")
            for row in rows:
                table.add_row(*[str(c) for c in row])
            print_table(table)
