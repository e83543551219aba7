"""edgecnn: from a Keras CNN to a measured, quantized edge artifact.

Importing this package never imports TensorFlow: the runtime side (benchmark,
evaluate, compare) must run on boards that only have LiteRT or ONNX Runtime.
"""

__version__ = "0.1.0"
