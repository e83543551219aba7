"""Labelled images in, batches of model input out: the data side of train, prune, cluster and QAT.

    data = load_training_data("fashion-mnist", input_shape=(32, 32, 1), preprocess="unit")
    model.fit(data.train_dataset(64, seed=0), validation_data=data.val_dataset())

Sources are the calibration ones (`calibration.open_source`): ``fashion-mnist[:DIR]``
(trains on its train split and validates on its test split), a labelled image folder
(a ``dataset.txt`` of ``path, label`` lines), or an ``.npz`` with labels (its
``x_train``/``x_test`` arrays when it has them). A source without its own test split
is split once, seeded: ``val_fraction`` of it is held out for validation.

Geometry runs once, when the data is read, with the same code as calibration and
evaluation (`calibration.resize_image`: grayscale to RGB when the model wants it,
central crop, bilinear resize), and the images are kept as uint8. Values are
computed per batch in the tf.data pipeline with the operations of
`calibration.normalize`, in the same order and in float32, so a training batch is
bit-identical to what `calibration.preprocess` gives for the same pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import BadArgument
from edgecnn.progress import Progress  # noqa: F401  (re-exported: the protocol callers pass)

DATASET_HELP = (
    "expected `fashion-mnist[:DIR]`, a labelled image folder (a dataset.txt of `path, label` "
    "lines), or an .npz with labels (`y`/`labels`)"
)
_KEYWORDS = ("default", "fashion-mnist", "fashionmnist", "random")


@dataclass
class TrainingData:
    """Labelled images at one model's input size (uint8), with a held-out validation split."""

    x_train: np.ndarray  # uint8 (n, h, w, c), geometry done
    y_train: np.ndarray  # int64 (n,)
    x_val: np.ndarray
    y_val: np.ndarray
    input_shape: tuple[int, int, int]
    preprocess: str
    num_classes: int
    class_names: list[str] | None
    crop_fraction: float
    source: dict[str, Any]
    validation: dict[str, Any]
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    # -- batches ---------------------------------------------------------------------
    def train_dataset(self, batch_size: int = 64, *, seed: int | None = None, shuffle: bool = True):
        """A tf.data pipeline of (float32 batch, int64 labels), reshuffled every epoch (seeded)."""
        import tensorflow as tf

        batch_size = _positive_int(batch_size, "batch_size")
        ds = tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train))
        if shuffle:
            ds = ds.shuffle(
                len(self.x_train), seed=self.seed if seed is None else int(seed), reshuffle_each_iteration=True
            )
        return self._finish(ds.batch(batch_size))

    def val_dataset(self, batch_size: int = 256):
        """The held-out split as a tf.data pipeline, in a fixed order."""
        import tensorflow as tf

        batch_size = _positive_int(batch_size, "batch_size")
        ds = tf.data.Dataset.from_tensor_slices((self.x_val, self.y_val)).batch(batch_size)
        return self._finish(ds)

    def _finish(self, ds):
        import tensorflow as tf

        mode = self.preprocess
        return ds.map(lambda x, y: (normalize_tf(x, mode), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.x_train) // int(batch_size))

    def train_arrays(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Training images as float32 model input (numpy, `calibration.normalize`) and labels."""
        from calibration import normalize

        x, y = self.x_train[:limit], self.y_train[:limit]
        return normalize(x, self.preprocess), y

    def val_arrays(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        from calibration import normalize

        x, y = self.x_val[:limit], self.y_val[:limit]
        return normalize(x, self.preprocess), y

    def representative_dataset(self, count: int = 100) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A TFLite `representative_dataset`: `count` training images, one per batch, seeded order."""
        from calibration import normalize

        index = np.random.default_rng(self.seed).permutation(len(self.x_train))[: int(count)]

        def representative_dataset():
            for i in index:
                yield [normalize(self.x_train[i : i + 1], self.preprocess)]

        return representative_dataset

    # -- the record ------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-ready: what the sidecar and the info records say about the data."""
        return {
            "source": self.source,
            "train_count": int(len(self.x_train)),
            "validation": {**self.validation, "count": int(len(self.x_val))},
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "preprocess": self.preprocess,
            "crop_fraction": self.crop_fraction,
            "resize": "central crop, then Pillow bilinear",
            "seed": self.seed,
        }


def normalize_tf(x, mode: str):
    """`calibration.normalize` in TensorFlow ops: uint8 (any shape, channels last) to float32.

    Same operations, same order, same float32 constants as the numpy version, so the
    results are bit-identical (a test checks it).
    """
    import tensorflow as tf

    from calibration.preprocessing import CAFFE_MEAN_BGR, TORCH_MEAN_RGB, TORCH_STD_RGB, check_mode

    mode = check_mode(mode).value
    x = tf.cast(x, tf.float32)
    if mode == "raw":
        return x
    if mode == "unit":
        return x / tf.constant(255.0, tf.float32)
    if mode == "tf":
        return x / tf.constant(127.5, tf.float32) - tf.constant(1.0, tf.float32)
    if x.shape[-1] != 3:
        raise BadArgument(f"preprocessing mode `{mode}` needs 3 channels (RGB). Received {x.shape[-1]} channel(s)")
    if mode == "torch":
        x = x / tf.constant(255.0, tf.float32)
        x = x - tf.constant(TORCH_MEAN_RGB, tf.float32)
        return x / tf.constant(TORCH_STD_RGB, tf.float32)
    x = tf.reverse(x, axis=[-1])  # caffe: RGB -> BGR, then the BGR mean
    return x - tf.constant(CAFFE_MEAN_BGR, tf.float32)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise BadArgument(f"{name} must be a positive integer. Received `{name}={value!r}`")
    return int(value)


def open_labelled_source(spec, *, split: str = "train"):
    """`calibration.open_source(spec)` for training: a path that does not exist, or a source
    without labels, is one clear BadArgument that speaks of a dataset, not calibration data."""
    from calibration import ImageSource, open_source

    if isinstance(spec, ImageSource):
        source = spec
    else:
        text = os.fspath(spec).strip()
        if not text:
            raise BadArgument(f"empty --dataset: {DATASET_HELP}")
        keyword = text.partition(":")[0].lower().replace("_", "-")
        path = Path(text).expanduser()
        if keyword not in _KEYWORDS and not path.exists():
            raise BadArgument(f"dataset `{text}` not found: {DATASET_HELP}")
        if keyword not in _KEYWORDS and path.is_dir() and not (path / "dataset.txt").is_file():
            raise BadArgument(f"dataset {text} holds no labels: a folder needs a dataset.txt of `path, label` lines")
        import warnings

        from calibration import CalibrationWarning

        with warnings.catch_warnings():  # they speak of calibration ("random noise"); random is refused below
            warnings.simplefilter("ignore", CalibrationWarning)
            source = open_source(text, split=split)
    if not source.labelled:
        where = getattr(source, "path", source.name)
        raise BadArgument(f"dataset {where} holds no labels: training needs labelled images ({DATASET_HELP})")
    return source


def _held_out_source(spec, source):
    """The source's own test split (Fashion-MNIST, an .npz with x_test), or None."""
    if getattr(source, "split", None) != "train" or not isinstance(spec, (str, os.PathLike)):
        return None
    text = os.fspath(spec).strip()
    if text.lower().endswith(":train"):  # `fashion-mnist:train` asks for the train split only
        return None
    from calibration import open_source

    test = open_source(text, split="test")
    return test if getattr(test, "split", None) == "test" and test.labelled else None


def load_training_data(
    dataset,
    *,
    input_shape: Sequence[int],
    preprocess: str,
    num_classes: int | None = None,
    val_fraction: float = 0.1,
    limit: int | None = None,
    val_limit: int | None = None,
    seed: int = 0,
    crop_fraction: float | None = None,
    progress: Progress | None = None,
) -> TrainingData:
    """Read `dataset` once, at `input_shape`, and hold out a validation split.

    `num_classes`: the model's class count when it is fixed (a saved model, `--classes`);
    a label outside [0, num_classes) is a BadArgument. Without it the dataset's own class
    count (its class names, else the largest label + 1) is used. `limit`/`val_limit` cap
    the training and validation images (seeded choice), for quick runs.
    """
    from calibration.preprocessing import check_crop_fraction, check_input_shape, check_mode

    if isinstance(dataset, TrainingData):
        return dataset
    progress = progress or Progress()
    shape = check_input_shape(input_shape)
    mode = check_mode(preprocess).value
    if mode in ("caffe", "torch") and shape[-1] != 3:
        raise BadArgument(f"preprocessing `{mode}` needs a 3-channel model input. Received {shape}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise BadArgument(f"val_fraction must be in (0, 1). Received `val_fraction={val_fraction}`")
    for name, value in (("limit", limit), ("val_limit", val_limit)):
        if value is not None:
            _positive_int(value, name)
    if num_classes is not None:
        num_classes = _positive_int(num_classes, "classes")
    seed = int(seed)

    source = open_labelled_source(dataset, split="train")
    held_out = _held_out_source(dataset, source)
    fraction = check_crop_fraction(source.default_crop_fraction if crop_fraction is None else crop_fraction)
    if held_out is not None:
        n_train = len(source) if limit is None else min(len(source), int(limit))
        n_val = len(held_out) if val_limit is None else min(len(held_out), int(val_limit))
        x_train, y_train = _read(source, n_train, seed, shape, fraction, progress, "training")
        x_val, y_val = _read(held_out, n_val, seed, shape, fraction, progress, "validation")
        validation = {"kind": "test split", "source": held_out.describe()}
    else:
        total = len(source)
        if total < 2:
            raise BadArgument(
                f"dataset {getattr(source, 'path', source.name)} has {total} image(s); "
                "training needs at least 2 (one is held out for validation)"
            )
        n_val = max(1, int(round(total * float(val_fraction))))
        if val_limit is not None:
            n_val = min(n_val, int(val_limit))
        n_train = total - n_val if limit is None else min(total - n_val, int(limit))
        x, y = _read(source, n_val + n_train, seed, shape, fraction, progress, "training and validation")
        x_val, y_val, x_train, y_train = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
        validation = {
            "kind": "held out",
            "fraction": float(val_fraction),
            "seed": seed,
            "note": f"{n_val} of {total} images of the source, chosen with seed {seed}, never trained on",
        }
    if len(x_train) == 0:
        raise BadArgument(f"dataset {getattr(source, 'path', source.name)} leaves no training images")

    dataset_classes = source.num_classes or int(max(y_train.max(), y_val.max())) + 1
    classes = num_classes if num_classes is not None else dataset_classes
    worst = int(max(y_train.max(), y_val.max()))
    if worst >= classes or min(int(y_train.min()), int(y_val.min())) < 0:
        raise BadArgument(
            f"labels outside the class range: dataset {getattr(source, 'path', source.name)} has "
            f"label {worst} but the model has {classes} classes (labels 0..{classes - 1})"
        )
    names = source.class_names if source.class_names and len(source.class_names) == classes else None
    warnings = [w for w in (source.warning, held_out.warning if held_out else None) if w]
    return TrainingData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        input_shape=shape,
        preprocess=mode,
        num_classes=classes,
        class_names=names,
        crop_fraction=fraction,
        source=source.describe(),
        validation=validation,
        seed=seed,
        warnings=warnings,
    )


def _read(
    source, count: int, seed: int, shape, crop_fraction: float, progress: Progress, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """`count` images of `source` in its seeded order, resized to `shape`, as uint8 + int64 labels."""
    from calibration import resize_image

    h, w, c = shape
    x = np.empty((count, h, w, c), np.uint8)
    y = np.empty((count,), np.int64)
    progress.start(f"reading {what} images", total=count)
    n = 0
    step = max(1, count // 50)
    for image, label in source.iter_images(count, seed=seed):
        if label is None:
            raise BadArgument(f"dataset {getattr(source, 'path', source.name)}: an image has no label")
        if image.shape == (h, w, c) and crop_fraction == 1.0:  # nothing to crop or resize
            x[n] = image
        else:
            x[n] = resize_image(image, input_shape=shape, crop_fraction=crop_fraction)
        y[n] = label
        n += 1
        if n % step == 0:
            progress.advance(step)
    return x[:n], y[:n]


def default_output(model: str, stage: str | None = None) -> Path:
    """Where a stage saves when no --out is given: artifacts/NAME[-STAGE].keras, NAME being the zoo
    name or the saved model's stem (a fine-tuned saved model gets -finetuned)."""
    from edgecnn.loading import is_model_file

    if is_model_file(model):
        return Path("artifacts") / f"{Path(model).stem}-{stage or 'finetuned'}.keras"
    from edgecnn.models import get_model_info

    name = get_model_info(model).name
    return Path("artifacts") / (f"{name}-{stage}.keras" if stage else f"{name}.keras")
