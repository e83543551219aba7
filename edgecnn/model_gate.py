"""The gate every Keras model file passes before Keras deserializes it.

A `.keras` or `.h5` file is a program as much as a model: Keras rebuilds it from a config
that names classes and functions, and tf_keras will import what the config names. A
`Lambda` in an `.h5` runs marshalled bytecode (the legacy HDF5 loader ignores safe mode);
a config may name a function of any module, or a TensorFlow op such as `io.write_file`,
for a layer to call. So edgecnn reads the config itself, without TensorFlow, and checks
every object it names against an allowlist: built-in Keras layers, initializers,
regularizers, constraints and activations, pure TensorFlow math ops, and the zoo's own
registered layers. Anything else is refused in one line that names the layer and why.
`--trust-model` (Keras's `safe_mode=False`, for files you made) is the only way past.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from edgecnn.errors import EdgecnnError

TRUST_HINT = "load it only if you made it yourself: --trust-model"
MAX_CONFIG_BYTES = 64 << 20  # a CNN's config is kilobytes; more is a zip bomb or not a model

# Built-in tf_keras 2.21 classes that rebuild from plain numbers and strings. Not here on purpose:
# Lambda (runs stored code), TFOpLambda and SlicingOpLambda (checked against TF_OPS below),
# ClassMethod/InstanceMethod/InstanceProperty (call a TensorFlow method named in the file),
# the lookup and text layers (read vocabulary files), and abstract bases.
KERAS_LAYERS = frozenset(
    """
    Activation ActivityRegularization Add AdditiveAttention AlphaDropout Attention Average
    AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D
    BatchNormalization Bidirectional CategoryEncoding CenterCrop Concatenate Conv1D
    Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D
    Convolution1D Convolution1DTranspose Convolution2D Convolution2DTranspose Convolution3D
    Convolution3DTranspose Cropping1D Cropping2D Cropping3D Dense DepthwiseConv1D DepthwiseConv2D
    Discretization Dot Dropout ELU EinsumDense Embedding Flatten GRU GRUCell GaussianDropout
    GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
    GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D
    GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization Identity InputLayer
    LSTM LSTMCell LayerNormalization LeakyReLU LocallyConnected1D LocallyConnected2D Masking
    MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D MaxPooling3D Maximum Minimum
    MultiHeadAttention Multiply Normalization PReLU Permute RNN RandomBrightness RandomContrast
    RandomCrop RandomFlip RandomHeight RandomRotation RandomTranslation RandomWidth RandomZoom ReLU
    RepeatVector Rescaling Reshape Resizing SeparableConv1D SeparableConv2D SeparableConvolution1D
    SeparableConvolution2D SimpleRNN SimpleRNNCell Softmax SpatialDropout1D SpatialDropout2D
    SpatialDropout3D SpectralNormalization StackedRNNCells Subtract ThresholdedReLU TimeDistributed
    UnitNormalization UpSampling1D UpSampling2D UpSampling3D ZeroPadding1D ZeroPadding2D ZeroPadding3D
    Functional Sequential Model
""".split()
)
KERAS_OBJECTS = frozenset(
    """
    Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity LecunNormal LecunUniform Ones
    Orthogonal RandomNormal RandomUniform TruncatedNormal VarianceScaling Zeros
    L1 L1L2 L2 OrthogonalRegularizer
    MaxNorm MinMaxNorm NonNeg RadialConstraint UnitNorm
    Policy
""".split()
)
KERAS_ACTIVATIONS = frozenset(
    """
    elu exponential gelu hard_sigmoid linear mish relu relu6 selu sigmoid silu softmax softplus
    softsign swish tanh leaky_relu log_softmax hard_silu hard_swish
""".split()
)
# Config keys whose string value Keras resolves to a callable (tf_keras's activations.get, which also
# finds the module's other callables: `deserialize`, `get`, `keras_export`) and calls on the tensors.
ACTIVATION_KEYS = ("activation", "recurrent_activation")
ACTIVATION_LAYER_NAMES = frozenset("ELU LeakyReLU PReLU ReLU Softmax ThresholdedReLU".split())
# The zoo's own layers, by the name Keras registers them under (a test checks this list
# against Keras's registry, so a new registered layer cannot be forgotten).
EDGECNN_LAYERS = {"edgecnn>LocalResponseNormalization": "LocalResponseNormalization"}
# Plain data that Keras's serializer writes for constants: no class or module is looked up.
PLAIN_DATA = frozenset({"__tensor__", "__numpy__", "__bytes__", "__tuple__"})
# TensorFlow ops a functional model may call as TFOpLambda (`x * 2`, `tf.nn.relu6(x)`): pure
# tensor math. tf.io, tf.print, tf.py_function and the rest of TensorFlow are not allowed.
TF_OP_PREFIXES = ("math.", "nn.", "linalg.", "__operators__.")
TF_OPS = frozenset(
    """
    reshape transpose concat stack unstack split expand_dims squeeze cast clip_by_value identity pad
    tile gather gather_nd slice strided_slice broadcast_to ones_like zeros_like shape where einsum
    argmax argmin one_hot reduce_mean reduce_sum reduce_max reduce_min reduce_prod maximum minimum
    image.resize compat.v1.transpose compat.v1.squeeze compat.v1.gather
""".split()
)
KERAS_MODULE_ROOTS = ("keras", "tf_keras")


class UntrustedModel(EdgecnnError):
    """A model file whose config names code edgecnn will not run: exit code 1."""


def check_model_file(path, *, trust: bool = False) -> None:
    """Refuse `path` unless every object its config names is on the allowlist (or `trust`)."""
    path = Path(path)
    config = read_model_config(path)
    if not trust:
        check_model_config(config, source=path.name)


def read_model_config(path) -> dict:
    """The model config as Keras will read it, chosen the way `keras.models.load_model` does."""
    path = Path(path)
    if str(path).endswith(".keras") and zipfile.is_zipfile(path):
        return _config_from_keras_archive(path)
    if _is_hdf5(path):
        return _config_from_hdf5(path)
    raise EdgecnnError(f"{path} is not a loadable Keras model: neither a .keras archive nor HDF5")


def check_model_config(config, *, source: str) -> None:
    """Walk the whole config; the first object off the allowlist raises UntrustedModel."""
    if not isinstance(config, dict):
        raise UntrustedModel(f"{source}: the model config is not an object")
    # Loading never compiles (compile=False sets compile_config aside), so its losses and
    # optimizers are never built; everything else is.
    body = {key: value for key, value in config.items() if key != "compile_config"}
    try:
        _walk(body, source=source, layer=None)
    except RecursionError:
        raise UntrustedModel(f"{source}: the model config is nested too deeply to check; {TRUST_HINT}") from None


def _walk(node, *, source: str, layer: str | None) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, source=source, layer=layer)
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        layer = _layer_name(node) or layer
        _check_object(node, source=source, layer=layer)
    for key in ACTIVATION_KEYS:  # a plain string is looked up by Keras and called on the tensors
        named = node.get(key)
        if isinstance(named, str) and named not in KERAS_ACTIVATIONS | ACTIVATION_LAYER_NAMES:
            where = f"{source}: layer '{layer}'" if layer else source
            raise UntrustedModel(
                f"{where} names activation {named!r}, which is not a Keras activation; refused, {TRUST_HINT}"
            )
    for value in node.values():
        _walk(value, source=source, layer=layer)


def _layer_name(node: dict) -> str | None:
    inner = node.get("config")
    name = node.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
    return name if isinstance(name, str) else None


def _check_object(node: dict, *, source: str, layer: str | None) -> None:
    class_name = node["class_name"]
    where = f"{source}: layer '{layer}'" if layer else source

    def refuse(why: str):
        shown = class_name if isinstance(class_name, str) else repr(class_name)
        raise UntrustedModel(f"{where} ({shown}) {why}; refused, {TRUST_HINT}")

    if not isinstance(class_name, str):
        refuse("has a class name that is not a string")
    if class_name in PLAIN_DATA:
        return
    if class_name == "__lambda__":
        refuse("holds a Python lambda stored in the file")
    if class_name == "Lambda":
        refuse("is a Lambda layer: it runs Python code stored in the file")
    module = node.get("module")
    registered = node.get("registered_name", class_name)
    if module is not None and not isinstance(module, str):
        refuse("names a module that is not a string")
    if class_name == "function":
        name = node.get("config")
        if name in KERAS_ACTIVATIONS and module in (None, "builtins", "keras.activations"):
            return
        refuse(f"calls function {name!r} of module {module!r}, which is not a Keras activation")
    if registered in EDGECNN_LAYERS and EDGECNN_LAYERS[registered] == class_name:
        return
    if class_name in EDGECNN_LAYERS and registered in (None, class_name) and module is None:
        return  # the legacy HDF5 format names a registered class by its registered name
    if registered not in (None, class_name):
        refuse(f"names registered object {registered!r}, which is neither Keras's nor edgecnn's")
    if module is not None and module.split(".")[0] not in KERAS_MODULE_ROOTS:
        refuse(f"names module {module!r}, outside Keras and edgecnn")
    if class_name in ("TFOpLambda", "SlicingOpLambda"):
        op = (node.get("config") or {}).get("function") if isinstance(node.get("config"), dict) else None
        if isinstance(op, str) and (op.startswith(TF_OP_PREFIXES) or op in TF_OPS):
            return
        refuse(f"calls TensorFlow function {op!r}, which is not a pure tensor op")
    if class_name in KERAS_LAYERS or class_name in KERAS_OBJECTS:
        return
    refuse("is not a built-in Keras layer nor one of edgecnn's")


def _config_from_keras_archive(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            # Keras opens config.json by name; ZipFile resolves a duplicated name the same way.
            with archive.open("config.json") as member:
                text = member.read(MAX_CONFIG_BYTES + 1)
    except KeyError:
        raise EdgecnnError(f"{path} is not a loadable Keras model: the archive has no config.json") from None
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise EdgecnnError(f"{path} is not a loadable Keras model: {exc}") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise EdgecnnError(f"{path}: config.json is over {MAX_CONFIG_BYTES >> 20} MB, not a model config")
    return _parse(text, path)


def _config_from_hdf5(path: Path) -> dict:
    try:
        import h5py
    except ImportError:
        raise EdgecnnError(
            f"{path}: reading an .h5 model needs the export side: pip install 'edgecnn[export]'"
        ) from None

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except (OSError, ValueError) as exc:
        raise EdgecnnError(f"{path} is not a loadable Keras model: {exc}") from None
    if raw is None:
        raise EdgecnnError(f"{path} holds no model config (a weights-only file?); save the whole model")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str) or len(raw) > MAX_CONFIG_BYTES:
        raise EdgecnnError(f"{path}: its model_config attribute is not a model config")
    return _parse(raw, path)


def _parse(text, path: Path) -> dict:
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EdgecnnError(f"{path} is not a loadable Keras model: its config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise UntrustedModel(f"{path.name}: the model config is not an object")
    return config


def _is_hdf5(path: Path) -> bool:
    try:
        import h5py
    except ImportError:  # the runtime side: no Keras to load it with either
        with open(path, "rb") as handle:
            return handle.read(8) == b"\x89HDF\r\n\x1a\n"
    return bool(h5py.is_hdf5(path))
