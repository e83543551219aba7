"""int8 TFLite in two steps (calibrate, then quantize: converters.tflite._calibrate_then_quantize)
gives the bytes of TensorFlow's one `convert()` call, which holds far more memory.

Each conversion runs in a fresh process: the split is chosen by EDGECNN_TFLITE_INT8, and a
process keeps TensorFlow's state (the original-model-type flag, tf2onnx-style counters) from
one conversion to the next.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parents[1]

# A residual model with zero-initialized biases (identical read-only buffers, which the
# deduplication merges) and a BatchNorm folded by the converter; weights drawn with a seed,
# then shifted so that activations have a range worth calibrating.
_CONVERT = r"""
import sys
import numpy as np
from converters._tf import import_keras
keras = import_keras()
from converters.tflite import keras_to_tflite

keras.utils.set_random_seed(0)
layers = keras.layers
inputs = layers.Input((16, 16, 3))
h = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
skip = h
h = layers.DepthwiseConv2D(3, padding="same")(h)
h = layers.BatchNormalization()(h)
h = layers.ReLU(6.0)(h)
h = layers.Conv2D(8, 1)(h)
h = layers.Add()([h, skip])
h = layers.GlobalAveragePooling2D()(h)
model = keras.Model(inputs, layers.Dense(10)(h))
rng = np.random.default_rng(1)
norm = model.layers[3]
norm.set_weights([w + rng.uniform(0.1, 0.5, w.shape).astype("float32") for w in norm.get_weights()])
samples = [rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32") for _ in range(8)]
data, record = keras_to_tflite(
    model, quantization="int8", representative_dataset=lambda: ([s] for s in samples), io=sys.argv[1]
)
sys.stdout.buffer.write(data)
"""


def _convert(io: str, mode: str) -> bytes:
    env = {**os.environ, "EDGECNN_TFLITE_INT8": mode, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", _CONVERT, io], capture_output=True, env=env, cwd=REPO, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


@pytest.mark.parametrize("io", ["int8", "uint8", "float"])
def test_split_int8_conversion_has_the_bytes_of_one_convert_call(io):
    split, whole = _convert(io, "split"), _convert(io, "converter")
    assert split[4:8] == b"TFL3"  # a flatbuffer, not an error text
    assert split == whole
