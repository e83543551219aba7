"""`edgecnn export`: model -> (QAT) -> (calibration) -> convert -> artifact + manifest.json.

The public function is short: check the request, load the model, fine-tune it
quantization-aware when asked (`--int8 --qat`), build the calibration data, then for
each format convert, run the parity check in the artifact's own runtime, and publish
the artifact folder atomically.

    request    ExportRequest and its checks; the names of the folders it writes
    pipeline   export(): the stages in order, in this process or one process per format
    model      build_model: the Keras model (zoo or file) as a BuiltModel; quantization_aware: QAT
    data       calibration and parity images
    convert    one format's conversion, quietly; the parity run
    record     the staging folder of one artifact: artifact, parity, manifest
    outfolder  --out: locks, staging, publishing together, signals, held warnings
    child      one process per format
    stages     seconds and peak memory per stage
"""

from edgecnn.export.child import _child_main
from edgecnn.export.convert import _convert, _parity, _predict, _quiet
from edgecnn.export.data import _calibration_and_parity_data, _calibration_source
from edgecnn.export.model import BuiltModel, _load_model, build_model, quantization_aware
from edgecnn.export.outfolder import (
    LOCK_SUFFIX,
    PARTIAL_SUFFIX,
    ExportBusy,
    _acquire_lock,
    _OutFolder,
    _release_lock,
)
from edgecnn.export.pipeline import export, reserve, tf_nest_flatten
from edgecnn.export.request import (
    IO_CHOICES,
    MAX_CALIB_SAMPLES,
    PREPROCESS_MODES,
    ExportRequest,
    artifact_stem,
    qat_settings,
)
from edgecnn.export.stages import Stages, peak_rss_bytes
from edgecnn.progress import Progress  # the protocol callers pass

__all__ = [
    "IO_CHOICES",
    "LOCK_SUFFIX",
    "MAX_CALIB_SAMPLES",
    "PARTIAL_SUFFIX",
    "PREPROCESS_MODES",
    "ExportBusy",
    "BuiltModel",
    "ExportRequest",
    "Progress",
    "Stages",
    "artifact_stem",
    "build_model",
    "export",
    "peak_rss_bytes",
    "qat_settings",
    "quantization_aware",
    "reserve",
    "tf_nest_flatten",
    # private, imported by tune, benchmarks and tests
    "_OutFolder",
    "_acquire_lock",
    "_calibration_and_parity_data",
    "_calibration_source",
    "_child_main",
    "_convert",
    "_load_model",
    "_parity",
    "_predict",
    "_quiet",
    "_release_lock",
]
