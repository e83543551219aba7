"""A saved Keras model as a session: the float reference that artifacts are compared with.

`edgecnn benchmark model.keras` times the Keras float model with the same method as
the artifacts, on the GPU when TensorFlow sees one, else the CPU. Unlike the rest of
`edgecnn.runtime` this needs the export extra (TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.runtime.tensors import TensorInfo


class KerasSession:
    format = "keras"
    runtime = "tensorflow"

    def __init__(self, path, *, threads: int | None = None, trust_model: bool = False):
        from edgecnn._tf import import_keras
        from edgecnn.loading import read_keras_model
        from edgecnn.model_gate import check_model_file

        check_model_file(path, trust=trust_model)  # before TensorFlow starts: a refusal is quick
        import_keras()
        import tensorflow as tf

        if threads:
            try:  # only possible before TensorFlow's runtime starts
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass
        self.path = Path(path)
        self.threads = threads
        self.runtime_version = tf.__version__
        self.provider = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
        self._model = read_keras_model(self.path, trust=trust_model)
        # One traced graph, as a deployed Keras model runs; the first call traces it.
        self._call = tf.function(lambda x: self._model(x, training=False), reduce_retracing=True)
        shape = tuple(-1 if d is None else int(d) for d in self._model.inputs[0].shape)
        self.inputs = [TensorInfo(name=self._model.inputs[0].name, shape=shape, dtype="float32")]
        self.outputs = [
            TensorInfo(name=t.name, shape=tuple(-1 if d is None else int(d) for d in t.shape), dtype="float32")
            for t in self._model.outputs
        ]
        self._feed = None
        self._last: list = []

    def set_inputs(self, arrays) -> None:
        import tensorflow as tf

        self._feed = tf.constant(np.asarray(arrays[0], np.float32))  # on the device, before timing

    def invoke(self) -> None:
        outputs = self._call(self._feed)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        self._last = [o.numpy() for o in outputs]  # waits for the device to finish

    def get_outputs(self) -> list:
        return self._last

    def run(self, arrays) -> list:
        self.set_inputs(arrays)
        self.invoke()
        return self.get_outputs()

    def op_types(self) -> list[str]:
        """Layer classes in graph order (Keras models have layers, not ops)."""
        return [type(layer).__name__ for layer in self._model.layers]
