"""The arithmetic of the design notes: what a convolution costs, in multiplies.

Notation of the notes: an `h x w` output, `n_c` input channels, `n_c'` output
channels, an `f x f` filter, stride 1 and 'same' padding. A normal convolution
computes every one of the `h * w * n_c'` outputs as a sum of `f * f * n_c`
products, so it costs `h * w * n_c' * f^2 * n_c` multiplies (multiply-adds; biases
are not counted). These are the counts `edgecnn.profiler` makes from a built graph.

    >>> conv_macs(28, 28, 192, 32, 5)                  # the Inception example
    120422400
    >>> bottlenecked_conv_macs(28, 28, 192, 16, 32, 5)  # 1x1 to 16 channels first
    12443648

Pure Python: no TensorFlow needed.
"""

from __future__ import annotations

from edgecnn.errors import BadArgument

__all__ = [
    "bottlenecked_conv_macs",
    "conv_macs",
    "depthwise_separable_macs",
    "depthwise_separable_ratio",
]


def _check(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadArgument(f"`{name}` must be a positive integer. Received `{name}={value!r}`")


def conv_macs(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Multiplies of a `k x k` convolution from `c_in` to `c_out` channels, `h x w` output.

    `h * w * c_out` outputs, each a sum of `k * k * c_in` products. From 28x28x192
    to 28x28x32 with a 5x5 filter: 28*28*32 * 5*5*192 = 120,422,400 (about 120M).
    """
    _check(h=h, w=w, c_in=c_in, c_out=c_out, k=k)
    return h * w * c_out * k * k * c_in


def bottlenecked_conv_macs(h: int, w: int, c_in: int, c_bottleneck: int, c_out: int, k: int) -> int:
    """Multiplies of a 1x1 convolution down to `c_bottleneck` channels, then the `k x k` one.

    The 1x1 "bottleneck layer" of Inception: `conv_macs(h, w, c_in, c_bottleneck, 1)
    + conv_macs(h, w, c_bottleneck, c_out, k)`. With 16 bottleneck channels the
    example above becomes 2,408,448 + 10,035,200 = 12,443,648 (about 12.4M), a
    tenth of the direct convolution, for about the same output.
    """
    _check(h=h, w=w, c_in=c_in, c_bottleneck=c_bottleneck, c_out=c_out, k=k)
    return conv_macs(h, w, c_in, c_bottleneck, 1) + conv_macs(h, w, c_bottleneck, c_out, k)


def depthwise_separable_macs(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Multiplies of a depthwise-separable convolution (MobileNet), `h x w` output.

    A depthwise `k x k` convolution filters each of the `c_in` channels on its own
    (`h * w * c_in * k^2`), then a pointwise 1x1 convolution mixes them into `c_out`
    channels (`h * w * c_in * c_out`).
    """
    _check(h=h, w=w, c_in=c_in, c_out=c_out, k=k)
    return h * w * c_in * k * k + h * w * c_in * c_out


def depthwise_separable_ratio(c_out: int, k: int) -> float:
    """Cost of a depthwise-separable convolution over a normal one: `1/n_c' + 1/f^2`.

    `(h w n_c f^2 + h w n_c n_c') / (h w n_c' f^2 n_c)`; `h`, `w` and `n_c` cancel.
    For 3x3 filters and many output channels that is a little more than 1/9: about
    8 to 9 times fewer multiplies.
    """
    _check(c_out=c_out, k=k)
    return 1 / c_out + 1 / k**2
