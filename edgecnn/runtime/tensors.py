"""Tensor descriptions and the (de)quantization arithmetic of TFLite and ONNX Runtime."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # -1 or None where the dimension is dynamic
    dtype: str  # numpy dtype name: float32, float16, int8, uint8, int16
    scale: float | None = None  # real = scale * (q - zero_point); None when not quantized
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale != 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["shape"] = [None if d in (None, -1) else int(d) for d in self.shape]
        return data


def quantize(x, info: TensorInfo) -> np.ndarray:
    """Real values to the tensor's own dtype (round to nearest, saturate)."""
    dtype = np.dtype(info.dtype)
    if info.quantized:
        q = np.round(np.asarray(x, np.float32) / info.scale) + info.zero_point
        limits = np.iinfo(dtype)
        return np.clip(q, limits.min, limits.max).astype(dtype)
    return np.asarray(x).astype(dtype, copy=False)


def dequantize(q, info: TensorInfo) -> np.ndarray:
    """The tensor's stored values back to float32 real values."""
    if info.quantized:
        return ((np.asarray(q, np.float32) - info.zero_point) * info.scale).astype(np.float32)
    return np.asarray(q).astype(np.float32, copy=False)
