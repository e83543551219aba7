"""Step 3's ranking: which layers to keep float, from `edgecnn.numerics.layer_errors`.

Errors add up along the graph, so a layer's own SQNR also carries every error before it. We
rank by what each layer adds: its relative noise power (rel_rmse^2) minus the largest of its
inputs', shown as the SQNR the layer would have alone (`own_sqnr_db`, lower is worse).

Keeping a layer float means computing it on float input: the input tensor's range is set by
the op that produces it, so the op computing that input (and the pooling, reshapes and
activations in between) stays float too; otherwise the input keeps its int8 rounding. A
channel whose activations span 100x its neighbours' is the classic case: its consumer adds
the noise, its producer's per-tensor scale causes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Sensitivity:
    name: str  # the compared tensor
    op_type: str
    layer: str  # the op (TFLite: its output tensor, the recipe's scope; ONNX: the node name)
    sqnr_db: float
    rel_rmse: float
    own_sqnr_db: float
    group: tuple[str, ...]  # what stays float when this layer does
    kept_float: bool = False

    def to_dict(self) -> dict:
        def number(x):
            return None if x is None or math.isnan(x) else (round(x, 3) if math.isfinite(x) else "inf")

        return {
            "layer": self.layer,
            "tensor": self.name,
            "type": self.op_type,
            "sqnr_db": number(self.sqnr_db),
            "rel_rmse": number(self.rel_rmse),
            "own_sqnr_db": number(self.own_sqnr_db),
            "float_group": list(self.group),
            "kept_float": self.kept_float,
        }


def _key(op) -> str:
    """The handle that keeps an op float: ONNX node name, or TFLite first output tensor name."""
    return op.name if getattr(op, "name", "") else op.outputs[0]


def rank(errors, ops, pass_through) -> list[Sensitivity]:
    """The layers of `ops` (engine graph, execution order) that `errors` (LayerError list) cover,
    most sensitive first."""
    producer = {}
    for op in ops:
        for out in op.outputs:
            producer[out] = op
    by_tensor = {e.name: e for e in errors}
    # numerics may name an ONNX tensor after its QDQ pair; strip the suffixes ORT adds
    for e in errors:
        for suffix in ("_QuantizeLinear_Output", "_DequantizeLinear_Output", "_QuantizeLinear_Input"):
            if e.name.endswith(suffix):
                by_tensor.setdefault(e.name[: -len(suffix)], e)

    def compute_op(tensor):
        """The op that computes `tensor`, past pass-through ops; and the ops on the way."""
        chain = []
        op = producer.get(tensor)
        while op is not None:
            chain.append(op)
            if op.op_type not in pass_through or not op.inputs:
                return op, chain
            op = producer.get(op.inputs[0])
        return None, chain

    def input_error(op):
        """The largest relative noise power among the nearest measured tensors feeding `op`."""
        worst = 0.0
        for tensor in op.inputs:
            seen = 0
            while tensor is not None and seen < 64:
                seen += 1
                if tensor in by_tensor:
                    rel = by_tensor[tensor].rel_rmse
                    worst = max(worst, rel * rel if math.isfinite(rel) else math.inf)
                    break
                up = producer.get(tensor)
                tensor = up.inputs[0] if up is not None and up.inputs else None
        return worst

    ranked: dict[str, Sensitivity] = {}
    for e in errors:
        tensor = (
            e.name if e.name in producer else next((t for t, v in by_tensor.items() if v is e and t in producer), None)
        )
        if tensor is None:
            continue
        op, chain = compute_op(tensor)
        if op is None:
            continue
        group = [_key(o) for o in chain]
        for t in op.inputs:  # the inputs' producers, up to and including the op computing each
            _, upstream = compute_op(t)
            group.extend(_key(o) for o in upstream)
        rel = e.rel_rmse if math.isfinite(e.rel_rmse) else math.inf
        added = rel * rel - input_error(op)
        own = math.inf if added <= 0 else (-10.0 * math.log10(added) if math.isfinite(added) else -math.inf)
        key = _key(op)
        entry = Sensitivity(e.name, e.op_type, key, e.sqnr_db, e.rel_rmse, own, tuple(dict.fromkeys(group)))
        if key not in ranked or own < ranked[key].own_sqnr_db:
            ranked[key] = entry
    return sorted(ranked.values(), key=lambda s: (s.own_sqnr_db, s.sqnr_db))


def float_set(ranked: list[Sensitivity], k: int) -> list[str]:
    """What stays float when the k most sensitive layers do: the union of their groups."""
    keep: dict[str, None] = {}
    for entry in ranked[:k]:
        keep.update(dict.fromkeys(entry.group))
    return list(keep)
