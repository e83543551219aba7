"""Fold inference-mode BatchNormalization into the convolution before it, in Keras.

tf2onnx folds batch norm into convolutions itself, but not the same way twice: from
one process to the next ~12 of MobileNetV2's 52 BatchNormalization nodes stay
unfolded, in varying places, so the same export gave different bytes. Folding
before tf2onnx means it never sees those layers. In inference mode

    bn(conv(x)) = gamma * (W*x + b - mean) / sqrt(var + eps) + beta
                = (W * s)*x + (b - mean) * s + beta,      s = gamma / sqrt(var + eps)

per output channel, so the conv takes kernel W * s and bias (b - mean) * s + beta.

The model is rebuilt from its config with each foldable BatchNormalization left out
and its consumers wired to the conv; every other layer keeps its name and weights.
Folded: a BatchNormalization over the channel axis whose only input is the output of
a Conv2D or DepthwiseConv2D (channels-last, linear activation, called once) that
nothing else reads. Anything else stays as it is. A model that cannot be rebuilt
(subclassed, custom layers without a config), or whose folded outputs differ from its
own, comes back untouched: folding never fails an export.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from converters._tf import import_keras

LOG = logging.getLogger(__name__)
FOLDABLE_CONVS = ("Conv2D", "DepthwiseConv2D")
# The folded model's outputs on random input must match the original's to this,
# relative to the largest output (float32 rounding is ~1e-6; a wrong fold is ~1).
CHECK_TOLERANCE = 1e-4


def fold_batchnorm(model) -> tuple[Any, dict]:
    """`(model, info)`: the model with BatchNormalization folded into convs where possible.

    `info` is a plain record: `folded` (BatchNormalization name -> conv name), `kept`
    (BatchNormalization name -> why it stayed), `untouched` (why the whole model came
    back as it was, or None) and `max_abs_diff` of the check on random input.
    """
    keras = import_keras()
    info: dict[str, Any] = {"folded": {}, "kept": {}, "untouched": None, "max_abs_diff": None}

    def untouched(reason: str):
        info.update(folded={}, untouched=reason)
        return model, info

    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        return untouched("not a functional or Sequential model")
    try:
        config = copy.deepcopy(model.get_config())
        if isinstance(model, keras.Sequential):
            pairs = _plan_sequential(config, info["kept"])
        elif {"layers", "input_layers", "output_layers"} <= set(config):
            pairs = _plan_functional(config, info["kept"])
        else:
            return untouched("its config is neither functional nor Sequential")
        if not pairs:
            return model, info
        folded = _rebuild(model, config, pairs)
    except Exception as exc:  # custom layers without a config, and the like
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        LOG.warning("batch norm folding skipped for %s: %s", model.name, reason)
        return untouched(f"rebuild failed: {reason}")
    difference, scale = _compare(model, folded)
    info["max_abs_diff"] = difference
    if not difference <= CHECK_TOLERANCE * max(1.0, scale):  # also catches NaN
        LOG.warning("batch norm folding skipped for %s: outputs differ by %g", model.name, difference)
        return untouched(f"folded outputs differ by {difference:g}")
    info["folded"] = dict(pairs)
    return folded, info


# -- which BatchNormalization layers fold -------------------------------------------------
def _foldable(bn: dict, conv: dict) -> str | None:
    """Why `bn` (a layer config) cannot fold into `conv`, or None if it can."""
    if conv["class_name"] not in FOLDABLE_CONVS:
        return f"its input comes from a {conv['class_name']}, not a Conv2D or DepthwiseConv2D"
    conv_cfg, bn_cfg = conv["config"], bn["config"]
    if conv_cfg.get("activation", "linear") != "linear":
        return f"{conv_cfg['name']} has activation {conv_cfg.get('activation')}"
    if conv_cfg.get("data_format", "channels_last") != "channels_last":
        return f"{conv_cfg['name']} is channels-first"
    axis = bn_cfg.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        axis = axis[0] if len(axis) == 1 else None
    if axis not in (-1, 3):
        return f"it normalizes axis {bn_cfg.get('axis')}, not the channels"
    if bn_cfg.get("renorm") or bn_cfg.get("virtual_batch_size") is not None:
        return "it uses batch renormalization or virtual batches"
    if bn_cfg.get("dtype") != conv_cfg.get("dtype"):
        return f"its dtype {bn_cfg.get('dtype')} differs from {conv_cfg['name']}'s"
    return None


def _plan_sequential(config: dict, kept: dict) -> list[tuple[str, str]]:
    """Drop each foldable BatchNormalization from a Sequential config; return the pairs."""
    layers, pairs, out = config["layers"], [], []
    for layer in layers:
        if layer["class_name"] == "BatchNormalization":
            name = layer["config"]["name"]
            previous = out[-1] if out else None
            if previous is None or previous["class_name"] == "InputLayer":
                kept[name] = "it reads the model input"
                out.append(layer)
                continue
            reason = _foldable(layer, previous)
            if reason is None and previous["config"]["name"] not in dict(pairs).values():
                previous["config"]["use_bias"] = True
                pairs.append((name, previous["config"]["name"]))
                continue
            kept[name] = reason or "its conv already folds another batch norm"
        out.append(layer)
    config["layers"] = out
    return pairs


def _plan_functional(config: dict, kept: dict) -> list[tuple[str, str]]:
    """Drop each foldable BatchNormalization from a functional config and wire its
    consumers to the conv; return the (batch norm, conv) pairs."""
    by_name = {layer["config"]["name"]: layer for layer in config["layers"]}
    readers: dict[str, list[str]] = {name: [] for name in by_name}
    for layer in config["layers"]:
        for ref in _references(layer.get("inbound_nodes", []), by_name):
            readers[ref[0]].append(layer["config"]["name"])
    for ref in _references(config["output_layers"], by_name):
        readers[ref[0]].append("<model output>")

    pairs = []
    for bn in config["layers"]:
        if bn["class_name"] != "BatchNormalization":
            continue
        name = bn["config"]["name"]
        reason = _functional_reason(bn, by_name, readers)
        if reason:
            kept[name] = reason
            continue
        pairs.append((name, bn["inbound_nodes"][0][0][0]))
    dropped = {bn: conv for bn, conv in pairs}
    for _bn, conv in pairs:
        by_name[conv]["config"]["use_bias"] = True
    config["layers"] = [layer for layer in config["layers"] if layer["config"]["name"] not in dropped]
    for layer in config["layers"]:
        _rewire(layer.get("inbound_nodes", []), dropped)
    _rewire(config["output_layers"], dropped)
    return pairs


def _functional_reason(bn: dict, by_name: dict, readers: dict) -> str | None:
    nodes = bn.get("inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0]) != 1:
        return "it is called more than once or on several inputs"
    source, node_index, tensor_index, *rest = nodes[0][0]
    call_kwargs = rest[0] if rest else {}
    if call_kwargs.get("training") not in (None, False) or set(call_kwargs) - {"training"}:
        return f"it is called with {call_kwargs}"
    conv = by_name.get(source)
    if conv is None or node_index != 0 or tensor_index != 0:
        return "its input is not a layer's only output"
    reason = _foldable(bn, conv)
    if reason:
        return reason
    if "<model output>" in readers[bn["config"]["name"]]:
        return "it is a model output (folding would rename the output)"
    if len(conv.get("inbound_nodes", [])) != 1:
        return f"{source} is called more than once"
    if readers[source] != [bn["config"]["name"]]:
        return f"{source}'s output is also read by {sorted(set(readers[source]) - {bn['config']['name']})}"
    return None


def _references(data, by_name: dict):
    """Each `[layer, node_index, tensor_index, ...]` reference in serialized node data."""
    if isinstance(data, (list, tuple)):
        if (
            len(data) in (3, 4)
            and isinstance(data[0], str)
            and data[0] in by_name
            and isinstance(data[1], int)
            and isinstance(data[2], int)
        ):
            yield data
            if len(data) == 4:  # call kwargs can hold tensors too
                yield from _references(data[3], by_name)
            return
        for item in data:
            yield from _references(item, by_name)
    elif isinstance(data, dict):
        for value in data.values():
            yield from _references(value, by_name)


def _rewire(data, dropped: dict) -> None:
    """Point references to a dropped BatchNormalization at its conv, in place."""
    if isinstance(data, list):
        if (
            len(data) in (3, 4)
            and isinstance(data[0], str)
            and data[0] in dropped
            and isinstance(data[1], int)
            and isinstance(data[2], int)
        ):
            data[0] = dropped[data[0]]
        for item in data:
            _rewire(item, dropped)
    elif isinstance(data, dict):
        for value in data.values():
            _rewire(value, dropped)


# -- the new model ------------------------------------------------------------------------
def _rebuild(model, config: dict, pairs: list[tuple[str, str]]):
    keras = import_keras()
    custom_objects = {}
    for layer in _all_layers(model):
        cls = type(layer)
        custom_objects[cls.__name__] = cls
        custom_objects[keras.utils.get_registered_name(cls)] = cls
    cls = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    folded = cls.from_config(config, custom_objects=custom_objects)
    bn_of = {conv: bn for bn, conv in pairs}
    for layer in folded.layers:
        original = model.get_layer(layer.name)
        if layer.name in bn_of:
            layer.set_weights(_folded_weights(original, model.get_layer(bn_of[layer.name])))
        else:
            layer.set_weights(original.get_weights())
    return folded


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models keep their own layers
            yield from _all_layers(layer)


def _folded_weights(conv, bn) -> list[np.ndarray]:
    """[kernel, bias] of `conv` with `bn` folded in, computed in float64."""
    depthwise = hasattr(conv, "depthwise_kernel")
    kernel = (conv.depthwise_kernel if depthwise else conv.kernel).numpy()
    dtype = kernel.dtype
    kernel = kernel.astype(np.float64)
    channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
    bias = conv.bias.numpy().astype(np.float64) if conv.use_bias and conv.bias is not None else np.zeros(channels)
    gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else np.ones(channels)
    beta = bn.beta.numpy().astype(np.float64) if bn.center else np.zeros(channels)
    mean = bn.moving_mean.numpy().astype(np.float64)
    variance = bn.moving_variance.numpy().astype(np.float64)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    if depthwise:  # (kh, kw, in, multiplier): output channel in * multiplier + m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (kh, kw, in / groups, out)
        kernel = kernel * scale
    bias = (bias - mean) * scale + beta
    return [kernel.astype(dtype), bias.astype(dtype)]


def _compare(model, folded) -> tuple[float, float]:
    """Largest output difference between the two models on random input, and the
    largest output magnitude; (inf, 0) if either fails to run."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    inputs = [
        rng.uniform(-1.0, 1.0, [2] + [224 if d is None else int(d) for d in t.shape[1:]]).astype(np.float32)
        for t in model.inputs
    ]
    x = inputs[0] if len(inputs) == 1 else inputs
    try:
        reference = [np.asarray(t) for t in tf.nest.flatten(model(x, training=False))]
        outputs = [np.asarray(t) for t in tf.nest.flatten(folded(x, training=False))]
    except Exception:
        return float("inf"), 0.0
    if len(reference) != len(outputs) or any(a.shape != b.shape for a, b in zip(reference, outputs)):
        return float("inf"), 0.0
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(reference, outputs))
    scale = max(float(np.max(np.abs(a))) for a in reference)
    return difference, scale
