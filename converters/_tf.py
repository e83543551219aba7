"""Import TensorFlow and tf_keras quietly.

The `tensorflow` wheel prints CUDA and CPU-feature notices from C++ at import,
before any Python logging setting can apply. The CLI promises one clear line on
stderr, so the import runs with file descriptor 2 pointed at /dev/null.
Set EDGECNN_DEBUG=1 to see those notices.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def muted_stderr():
    """Point file descriptor 2 at /dev/null: silences C++ and Python prints alike."""
    if os.environ.get("EDGECNN_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_conversion(*, stderr: bool = True, stdout: bool = False, progress_bars: bool = False):
    """Converters and quantizers talk: C++ on stderr (`stderr`), Python logging and warnings
    (always quieted), ONNX Runtime's entropy and percentile calibrators on stdout, which is
    `--json`'s (`stdout`), AI Edge Quantizer in tqdm bars (`progress_bars`). The CLI draws its own
    progress and promises one line per error."""
    import io
    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    tqdm_disable = os.environ.get("TQDM_DISABLE")
    if progress_bars:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            warnings.simplefilter("ignore")
            if stderr:
                stack.enter_context(muted_stderr())
            if stdout:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            yield
    finally:
        root.setLevel(level)
        if progress_bars:
            if tqdm_disable is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = tqdm_disable


def import_keras():
    """Return the `tf_keras` module (Keras 2), TensorFlow initialised and quiet."""
    if "tf_keras" in sys.modules:
        return sys.modules["tf_keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with muted_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery prints too
            import tf_keras
    except ImportError as exc:
        from calibration.errors import EdgecnnError

        raise EdgecnnError(
            f"this command needs the export side of edgecnn ({exc.name} is missing): pip install 'edgecnn[export]'"
        ) from None
    tf.get_logger().setLevel("ERROR")
    return tf_keras
