"""The two halves `check.py` runs on each side of the emulation boundary.

    python sides.py weights --out W.weights.h5 [--model mobilenet_v2 --input-size 96 --alpha 0.35]
    python sides.py predict --data DIR --out DIR ARTIFACT...  [--inputs inputs.npy]

`weights` (x86 only, needs the export extra) writes random MobileNetV2 weights whose
BatchNorm statistics are measured on real images and whose classifier is scaled to a
confident logit spread (`edgecnn.training.random_weights.bn_recalibrated_model`): with
plain random weights every output is the same flat softmax, and "the same top-1 on both
sides" would prove nothing.

`predict` is TensorFlow-free (numpy, Pillow, edgecnn.runtime, calibration): it runs on
x86 and, unchanged, inside the aarch64 root. For each artifact it reads the images of
--data with the manifest's preprocessing (or takes the float inputs of --inputs, to
compare the runtimes alone), runs them one by one through `edgecnn.runtime.predict`,
and writes `<artifact file name>.npy` (dequantized outputs, float32, one row per image),
`inputs.npy` and `predict.json` (machine, CPU features, runtime versions, input sha256);
with --ort-reference, also `<name>.reference.npy` for .onnx files: ONNX Runtime with graph
optimizations off, a diagnosis of differences in the fused int8 kernels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

HWCAP_ASIMDDP = 1 << 20  # arm64 AT_HWCAP bit: SDOT/UDOT (Cortex-A76 has it, Cortex-A72 does not)
HWCAP2_I8MM = 1 << 13


def cpu_features() -> dict:
    """What the (emulated) CPU reports to programs: AT_HWCAP, as XNNPACK and ORT read it."""
    record = {"machine": platform.machine()}
    if platform.machine() != "aarch64":
        return record
    try:
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        hwcap, hwcap2 = int(getauxval(16)), int(getauxval(26))  # AT_HWCAP, AT_HWCAP2
    except (OSError, AttributeError):
        return record
    record.update(
        hwcap=hex(hwcap), hwcap2=hex(hwcap2), dotprod=bool(hwcap & HWCAP_ASIMDDP), i8mm=bool(hwcap2 & HWCAP2_I8MM)
    )
    return record


def u8s8_probe(k: int = 64) -> dict | None:
    """Which uint8 x int8 kernel ONNX Runtime's MLAS runs here: a MatMulInteger of uint8 255 by int8
    127 over K = `k`. VNNI (VPDPBUSD), Arm and exact kernels return 255 * 127 * k; the AVX2 kernel
    without VNNI (VPMADDUBSW) adds each pair of products in int16 and returns 32767 * k / 2.
    None where the `onnx` package (to write the probe) is missing, as in the aarch64 root."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    a, b = np.full((4, k), 255, np.uint8), np.full((k, 16), 127, np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "u8s8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 16])],
        [numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = int(session.run(None, {"a": a})[0][0, 0])
    exact = 255 * 127 * k
    return {"exact": exact, "ort": got, "saturates": got != exact, "depthwise_exact": _depthwise_probe()}


def _depthwise_probe(channels: int = 32) -> bool:
    """A depthwise 3x3 QLinearConv of uint8 255 by int8 127 (MLAS's depthwise kernel, not the
    matrix multiply): True when its centre output is the exact sum's (255 * 127 * 9 / 2000)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    scalars = {
        "xs": np.float32(1),
        "xz": np.uint8(0),
        "ws": np.float32(1),
        "wz": np.int8(0),
        "ys": np.float32(2000),
        "yz": np.uint8(0),
    }
    inits = [numpy_helper.from_array(np.full((channels, 1, 3, 3), 127, np.int8), "w")]
    inits += [numpy_helper.from_array(np.array(v), n) for n, v in scalars.items()]
    node = helper.make_node(
        "QLinearConv",
        ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
        ["y"],
        group=channels,
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    shape = [1, channels, 6, 6]
    graph = helper.make_graph(
        [node],
        "depthwise_probe",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": np.full(shape, 255, np.uint8)})[0]
    return int(y[0, 0, 2, 2]) == round(255 * 127 * 9 / 2000)


def output_step(path, session) -> float | None:
    """The quantization scale of the artifact's (first) output, the unit of the check's tolerance:
    TFLite's output tensor scale; for ONNX (whose outputs are float after a DequantizeLinear) the
    scale of the DequantizeLinear that produces the output or feeds the float op that does (a final
    Softmax). None when there is none, or where the `onnx` package is missing (the aarch64 root)."""
    path = Path(path)
    if path.suffix == ".tflite":
        (info, *_) = session.outputs
        return float(info.scale) if info.scale else None
    try:
        import numpy as np
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    graph = onnx.load(str(path)).graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {t.name: t for t in graph.initializer}
    node = producers.get(graph.output[0].name)
    for _ in range(3):  # the output's producer, or a float op or two after the last DequantizeLinear
        if node is None:
            return None
        if node.op_type == "DequantizeLinear":
            scale = constants.get(node.input[1])
            return float(np.max(numpy_helper.to_array(scale))) if scale is not None else None
        node = producers.get(node.input[0])
    return None


def ort_reference(path, arrays):
    """ONNX Runtime with graph optimizations off: every QuantizeLinear/DequantizeLinear pair runs
    as written and the operators between them in float32, the model's QDQ semantics without the
    fused int8 kernels (which differ between x86 with or without VNNI and Arm)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: arrays[i : i + 1]})[0] for i in range(len(arrays))])


def predict(args) -> int:
    import numpy as np

    import calibration
    from edgecnn.runtime import open_session
    from edgecnn.runtime import predict as run_over

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"python": platform.python_version(), "cpu": cpu_features(), "artifacts": {}}
    if platform.machine() in ("x86_64", "AMD64"):
        record["u8s8_probe"] = u8s8_probe()
    given = np.load(args.inputs) if args.inputs else None
    inputs = None
    for artifact in map(Path, args.artifacts):
        manifest = json.loads((artifact.parent / "manifest.json").read_text())
        session = open_session(artifact)
        if given is not None:
            arrays = given
        else:
            (info,) = session.inputs
            shape = tuple(int(d) for d in info.shape[1:])
            arrays = np.concatenate(
                [
                    batch
                    for batch, _ in calibration.iter_batches(
                        args.data,
                        input_shape=shape,
                        preprocess=manifest["preprocess"]["mode"],
                        crop_fraction=manifest["preprocess"].get("crop_fraction"),
                        batch_size=16,
                    )
                ]
            )
        if inputs is None:
            inputs = arrays
        elif not np.array_equal(inputs, arrays):
            raise SystemExit("the artifacts take different inputs; predict compares one input set")
        outputs = run_over(session, arrays, batch_size=1)  # image by image, the same on both sides
        np.save(out / f"{artifact.name}.npy", outputs)
        if args.ort_reference and artifact.suffix == ".onnx":
            np.save(out / f"{artifact.name}.reference.npy", ort_reference(artifact, arrays))
        record["artifacts"][artifact.name] = {
            "runtime": session.runtime,
            "runtime_version": session.runtime_version,
            "images": int(len(arrays)),
            "outputs_shape": list(outputs.shape),
            "output_step": output_step(artifact, session),
        }
    np.save(out / "inputs.npy", inputs)
    record["inputs_sha256"] = hashlib.sha256(np.ascontiguousarray(inputs).tobytes()).hexdigest()
    record["inputs_from"] = "given" if given is not None else "decoded here"
    import numpy
    import PIL

    record["numpy"], record["pillow"] = numpy.__version__, PIL.__version__
    (out / "predict.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


def weights(args) -> int:
    from edgecnn.models import get_model_info
    from edgecnn.training.random_weights import bn_recalibrated_model

    size, channels = args.input_size, get_model_info(args.model).default_input_shape[-1]
    model, record = bn_recalibrated_model(
        args.model, input_shape=(size, size, channels) if size else None, alpha=args.alpha, samples=args.bn_samples
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial.weights.h5")
    model.save_weights(str(partial))
    partial.replace(out)
    record["file"] = out.name
    print(json.dumps(record))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict")
    p.add_argument("artifacts", nargs="+")
    p.add_argument("--data")
    p.add_argument("--inputs")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--ort-reference",
        action="store_true",
        help="Also run .onnx files with graph optimizations off (<name>.reference.npy).",
    )
    w = commands.add_parser("weights")
    w.add_argument("--out", required=True)
    w.add_argument("--model", default="mobilenet_v2")
    w.add_argument("--input-size", type=int, default=96)
    w.add_argument("--alpha", type=float, default=0.35)
    w.add_argument("--bn-samples", type=int, default=32)
    args = parser.parse_args(argv)
    if args.command == "predict" and not (args.data or args.inputs):
        parser.error("predict needs --data or --inputs")
    return predict(args) if args.command == "predict" else weights(args)


if __name__ == "__main__":
    sys.exit(main())
