"""Where images come from: one interface for calibration, training and evaluation.

`open_source(spec)` turns what a user typed into an `ImageSource`:

- ``"default"``: about 100 labelled ImageNet validation photos shipped in this package;
- a folder: with a ``dataset.txt`` of ``path, label`` lines (and an optional
  ``synset_words.txt`` beside it for class names), or without one, every image file
  under it, unlabelled; a path to a dataset.txt-style file or to one image works too;
- ``"fashion-mnist"`` / ``"fashion-mnist:DIR"`` / ``"fashion-mnist:train"``: the idx
  files of the Debian package ``dataset-fashion-mnist``;
- a ``.npz`` file of arrays: images under ``x`` or ``images`` (or ``x_train``/``x_test``
  chosen by `split`, as in Keras's ``mnist.npz``), optional labels under ``y``/``labels``;
- ``"random"`` / ``"random:N"``: uniform noise, only when asked for, with a warning.

Every source yields ``(uint8 HxWx{1,3} image, label or None)`` from
`iter_images(limit, seed=...)`: in a fixed order without a seed, in a seeded
shuffled order with one, so the same command picks the same images every time.
Only numpy, Pillow and the standard library: this runs on boards without TensorFlow.
"""

from __future__ import annotations

import gzip
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from calibration.errors import BadArgument, EdgecnnError

IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".bmp",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
DATASET_FILE = "dataset.txt"
CLASS_NAMES_FILE = "synset_words.txt"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data" / "imagenet-100"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLITS = ("train", "test")
IMAGENET_CROP_FRACTION = 0.875  # 224 / 256: the usual ImageNet central crop

Label = int | None


class CalibrationWarning(UserWarning):
    """Calibration data that works but should not be trusted (random noise)."""


def _spec_help() -> str:
    return (
        "expected `default`, `fashion-mnist[:DIR]`, `random[:N]`, a folder of images, "
        "a dataset.txt file or an .npz file"
    )


class ImageSource:
    """A finite, re-iterable collection of uint8 images with optional integer labels.

    Subclasses set `kind`, `name`, `default_crop_fraction` and `class_names`, and
    implement `__len__` and `_read(index) -> (image, label)`; `_read` raises
    `_Unreadable` for an entry that does not decode.
    """

    kind: str = "images"
    default_crop_fraction: float = 1.0

    def __init__(self, name: str, *, class_names: Sequence[str] | None = None):
        self.name = name
        self.class_names: list[str] | None = list(class_names) if class_names else None
        self.skipped = 0  # entries that did not decode in the latest iter_images call
        self.skipped_files: list[str] = []  # "entry: reason", latest iter_images call

    # -- facts -------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} images>"

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    @property
    def labelled(self) -> bool:
        return False

    @property
    def warning(self) -> str | None:
        """One line the CLI prints before it trusts this data, or None."""
        if self.skipped:
            first = self.skipped_files[0] if self.skipped_files else ""
            return (
                f"skipped {self.skipped} image file(s) of {getattr(self, 'path', self.name)} "
                f"that did not decode (first: {first})"
            )
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record for the manifest."""
        return {
            "kind": self.kind,
            "name": self.name,
            "count": len(self),
            "labelled": self.labelled,
            "num_classes": self.num_classes,
            "default_crop_fraction": self.default_crop_fraction,
        }

    def for_input_shape(self, input_shape: Sequence[int]) -> ImageSource:
        """The source to use for a model with `input_shape`; only `random` cares."""
        return self

    # -- reading ------------------------------------------------------------------
    def _read(self, index: int) -> tuple[np.ndarray, Label]:
        raise NotImplementedError

    def _entry_name(self, index: int) -> str:
        return f"#{index}"

    def order(self, seed: int | None = None) -> np.ndarray:
        """Entry indices in reading order: as stored without a seed, else a seeded shuffle."""
        n = len(self)
        if seed is None:
            return np.arange(n)
        return np.random.default_rng(int(seed)).permutation(n)

    def iter_images(self, limit: int | None = None, *, seed: int | None = None) -> Iterator[tuple[np.ndarray, Label]]:
        """Yield up to `limit` `(uint8 HxWxC image, label or None)` pairs.

        Entries that do not decode are skipped and counted in `skipped` (the next
        entry in the order takes their place); if none decodes, EdgecnnError.
        """
        if limit is not None and int(limit) < 0:
            raise BadArgument(f"limit must be >= 0. Received `limit={limit}`")
        self.skipped = 0
        self.skipped_files = []
        yielded = 0
        if limit is not None and int(limit) == 0:
            return
        for index in self.order(seed):
            try:
                image, label = self._read(int(index))
            except _Unreadable as exc:
                self.skipped += 1
                self.skipped_files.append(f"{self._entry_name(int(index))}: {exc}")
                continue
            yield image, label
            yielded += 1
            if limit is not None and yielded >= int(limit):
                return
        if yielded == 0 and len(self):
            where = getattr(self, "path", self.name)
            raise EdgecnnError(
                f"no readable image in {where}: none of the {self.skipped} image file(s) "
                f"tried decodes (first: {self.skipped_files[0]})"
            )

    def load_arrays(self, limit: int | None = None, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """All (or `limit`) images stacked as uint8 NHWC, and labels as int64 (or None).

        For training on small prepared datasets; needs images of one size (use
        `preprocess` for photos of mixed sizes).
        """
        images, labels = [], []
        for image, label in self.iter_images(limit, seed=seed):
            if images and image.shape != images[0].shape:
                raise EdgecnnError(
                    f"images of {self.name} differ in size ({images[0].shape} and {image.shape}): "
                    "resize them with calibration.preprocess first"
                )
            images.append(image)
            labels.append(label)
        if not images:
            return np.zeros((0, 0, 0, 1), np.uint8), None
        y = None if any(label is None for label in labels) else np.asarray(labels, np.int64)
        return np.stack(images), y


class _Unreadable(Exception):
    """An entry that does not decode; iter_images skips it."""


# -- image files ------------------------------------------------------------------


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """A file's pixels as uint8 HxWx1 (grayscale) or HxWx3 (everything else).

    EXIF orientation is not applied, as TensorFlow and Keras loaders do not apply it.
    16-bit grayscale is scaled to 8 bits. A file that does not decode raises what
    Pillow raises (OSError, ValueError, ...).
    """
    with Image.open(path) as im:
        im.load()
        if im.mode in ("L", "1", "LA", "La"):
            im = im.convert("L")
        elif im.mode.startswith("I;16") or im.mode in ("I", "F"):
            arr = np.asarray(im, dtype=np.float64)
            if im.mode.startswith("I;16") or arr.max(initial=0) > 255:
                arr = arr / 257.0
            return np.clip(np.rint(arr), 0, 255).astype(np.uint8)[..., None]
        elif im.mode != "RGB":
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _decode_or_skip(path: Path) -> np.ndarray:
    try:
        return decode_image(path)
    except FileNotFoundError:
        raise _Unreadable("file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _Unreadable(" ".join(str(exc).split()) or type(exc).__name__) from None


class FileListSource(ImageSource):
    """Image files, each with an optional label: a folder, a dataset.txt, or the default set."""

    default_crop_fraction = IMAGENET_CROP_FRACTION

    def __init__(
        self,
        entries: Sequence[tuple[Path, Label]],
        *,
        name: str,
        kind: str,
        path: str,
        class_names: Sequence[str] | None = None,
        class_ids: Sequence[str] | None = None,
    ):
        super().__init__(name, class_names=class_names)
        self.kind = kind
        self.path = path
        self.entries = list(entries)
        self.class_ids = list(class_ids) if class_ids else None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def labelled(self) -> bool:
        return bool(self.entries) and all(label is not None for _, label in self.entries)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": self.path}

    def _entry_name(self, index: int) -> str:
        return self.entries[index][0].name

    def _read(self, index: int) -> tuple[np.ndarray, Label]:
        path, label = self.entries[index]
        return _decode_or_skip(path), label


def _read_class_names(path: Path) -> tuple[list[str], list[str] | None]:
    """(names, WordNet ids or None) from synset_words.txt (``n01440764 tench, Tinca tinca``).

    A name is the first of the comma-separated synonyms; lines without a WordNet
    id are names as they stand.
    """
    names, ids = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if len(head) == 9 and head[0] == "n" and head[1:].isdigit() and rest:
            ids.append(head)
            names.append(rest.split(",")[0].strip())
        else:
            names.append(line)
    return names, (ids if len(ids) == len(names) else None)


def _parse_dataset_line(line: str) -> tuple[str, Label]:
    """``path, label`` or ``path label`` or just ``path``."""
    if "," in line:
        path, _, label = line.rpartition(",")
        label = label.strip()
        if not label.lstrip("-").isdigit():
            raise ValueError(f"label `{label}` is not an integer")
        return path.strip(), int(label)
    parts = line.rsplit(None, 1)
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        return parts[0], int(parts[1])
    return line, None


def _open_dataset_file(
    path: Path, *, kind: str = "dataset", name: str | None = None, shown_path: str | None = None
) -> FileListSource:
    root = path.parent
    entries: list[tuple[Path, Label]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadArgument(f"{path} is not a text file of `path, label` lines") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rel, label = _parse_dataset_line(line)
        except ValueError as exc:
            raise BadArgument(f"{path}, line {number}: {exc}; expected `path, label`") from None
        if label is not None and label < 0:
            raise BadArgument(f"{path}, line {number}: label {label} is negative")
        entries.append((root / rel, label))
    if not entries:
        raise BadArgument(f"{path} lists no images")
    has_label = {label is not None for _, label in entries}
    if len(has_label) > 1:
        raise BadArgument(f"{path}: some lines have a label and some do not")
    class_names = class_ids = None
    names_file = root / CLASS_NAMES_FILE
    if names_file.is_file():
        class_names, class_ids = _read_class_names(names_file)
        worst = max((label for _, label in entries if label is not None), default=-1)
        if worst >= len(class_names):
            raise BadArgument(
                f"{path}: label {worst} is out of range for the {len(class_names)} classes of {names_file}"
            )
    return FileListSource(
        entries,
        name=name or (root.name if path.name == DATASET_FILE else path.name),
        kind=kind,
        path=shown_path or str(path),
        class_names=class_names,
        class_ids=class_ids,
    )


def _scan_folder(folder: Path) -> FileListSource:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )
    if not files:
        raise BadArgument(
            f"calibration folder {folder} holds no image files "
            f"({', '.join(sorted(s for s in IMAGE_SUFFIXES if len(s) <= 5))}) and no {DATASET_FILE}"
        )
    return FileListSource([(p, None) for p in files], name=folder.name or str(folder), kind="folder", path=str(folder))


def open_default() -> FileListSource:
    """The ~100 ImageNet validation photos shipped with this package (labelled, 1000 classes)."""
    source = _open_dataset_file(
        DEFAULT_DATA_DIR / DATASET_FILE,
        kind="default",
        name="imagenet-100 (default)",
        shown_path="calibration/data/imagenet-100",
    )
    return source


# -- arrays -------------------------------------------------------------------------


class ArraySource(ImageSource):
    """Images held as one uint8 NHWC array (loaded on first use), labels optional."""

    def __init__(
        self,
        loader: Callable[[], tuple[np.ndarray, np.ndarray | None]],
        count: int,
        *,
        name: str,
        kind: str,
        path: str,
        split: str | None = None,
        labelled: bool,
        class_names: Sequence[str] | None = None,
        default_crop_fraction: float = 1.0,
    ):
        super().__init__(name, class_names=class_names)
        self.kind = kind
        self.path = path
        self.split = split
        self.default_crop_fraction = default_crop_fraction
        self._loader = loader
        self._count = int(count)
        self._labelled = labelled
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def labelled(self) -> bool:
        return self._labelled

    def describe(self) -> dict[str, Any]:
        record = {**super().describe(), "path": self.path}
        if self.split is not None:
            record["split"] = self.split
        return record

    def _arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._x is None:
            x, y = self._loader()
            x.setflags(write=False)  # images are yielded as views of this array
            self._x, self._y = x, y
        return self._x, self._y

    def _read(self, index: int) -> tuple[np.ndarray, Label]:
        x, y = self._arrays()
        return x[index], (None if y is None else int(y[index]))

    def load_arrays(self, limit=None, *, seed=None):
        x, y = self._arrays()
        index = self.order(seed)
        if limit is not None:
            index = index[: int(limit)]
        self.skipped, self.skipped_files = 0, []
        return x[index], (None if y is None else y[index].astype(np.int64))


def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """An idx1/idx3 ubyte file (gzipped or not) as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise EdgecnnError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != expected_ndim:
        raise EdgecnnError(f"{path} is not an idx file of {expected_ndim}-d uint8 data")
    header = 4 + 4 * expected_ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise EdgecnnError(f"{path} is truncated: header says {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _idx_count(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(8)
    except (OSError, EOFError) as exc:
        raise EdgecnnError(f"cannot read {path}: {exc}") from None
    if len(head) < 8:
        raise EdgecnnError(f"{path} is not an idx file")
    return int.from_bytes(head[4:8], "big")


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def open_fashion_mnist(folder: str | os.PathLike | None = None, *, split: str = "test") -> ArraySource:
    """Fashion-MNIST `split` ("train": 60000, "test": 10000) from its idx files, 28x28x1."""
    if split not in SPLITS:
        raise BadArgument(f"split must be `train` or `test`. Received `split={split}`")
    folder = Path(folder) if folder is not None else FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    images = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise BadArgument(
            f"Fashion-MNIST not found in {folder} (need {prefix}-images-idx3-ubyte.gz and "
            f"{prefix}-labels-idx1-ubyte.gz): `apt-get install dataset-fashion-mnist` "
            "or give `fashion-mnist:DIR`"
        )

    def load() -> tuple[np.ndarray, np.ndarray]:
        x = _read_idx(images, 3)[..., None]
        y = _read_idx(labels, 1).astype(np.int64)
        if len(x) != len(y):
            raise EdgecnnError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
        return x, y

    return ArraySource(
        load,
        _idx_count(images),
        name=f"fashion-mnist/{split}",
        kind="fashion-mnist",
        path=str(folder),
        split=split,
        labelled=True,
        class_names=FASHION_MNIST_CLASSES,
        default_crop_fraction=1.0,
    )


def _npz_images(x: np.ndarray, path: Path) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise BadArgument(f"{path}: images must be NHW or NHWC with 1 or 3 channels. Received shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 255):
            raise BadArgument(
                f"{path}: {x.dtype} images must hold pixels in [0, 1] or [0, 255]; found [{x.min()}, {x.max()}]"
            )
        if np.issubdtype(x.dtype, np.floating) and x.size and x.max() <= 1.0:
            x = x * 255.0
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    raise BadArgument(f"{path}: images must be uint8 or float. Received dtype {x.dtype}")


def open_npz(path: str | os.PathLike, *, split: str = "test") -> ArraySource:
    """Arrays from an .npz: `x`/`images` (or `x_<split>`), optional `y`/`labels`
    (or `y_<split>`; integer or one-hot), optional `class_names`."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would take it for a pickle or an .npy
        raise BadArgument(f"{path} is not an .npz (a zip archive of .npy arrays, as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            x_key = next((k for k in (f"x_{split}", "x", "images") if k in keys), None)
            if x_key is None:
                raise BadArgument(
                    f"{path} has no images: expected an array `x`, `images` or `x_{split}`; "
                    f"found {', '.join(sorted(keys)) or 'nothing'}"
                )
            y_key = {"x": "y", "images": "labels", f"x_{split}": f"y_{split}"}[x_key]
            if y_key not in keys:
                y_key = next((k for k in ("y", "labels") if k in keys), None)
            x = _npz_images(npz[x_key], path)
            if len(x) == 0:
                raise BadArgument(f"{path}: `{x_key}` holds no images")
            y = None
            if y_key is not None:
                y = np.asarray(npz[y_key])
                if y.ndim == 2 and y.shape[1] == 1:
                    y = y[:, 0]  # a column of labels, as keras.datasets gives CIFAR's
                elif y.ndim == 2:
                    if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
                        raise BadArgument(
                            f"{path}: 2-D labels `{y_key}` must be one-hot (one 1 per row, the rest 0). "
                            f"Received shape {y.shape}, dtype {y.dtype}"
                        )
                    y = y.argmax(axis=1)  # one-hot
                if (
                    y.ndim != 1
                    or len(y) != len(x)
                    or not np.issubdtype(y.dtype, np.integer)
                    and not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))
                ):
                    raise BadArgument(
                        f"{path}: labels `{y_key}` must be {len(x)} integers. Received shape {y.shape}, dtype {y.dtype}"
                    )
                y = y.astype(np.int64)
                if y.size and y.min() < 0:
                    raise BadArgument(f"{path}: labels must be >= 0")
            class_names = None
            for key in ("class_names", "classes"):
                if key in keys:
                    class_names = [str(v) for v in np.asarray(npz[key]).ravel()]
                    break
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, BadArgument):
            raise
        raise BadArgument(f"cannot read {path} as an .npz of arrays: {exc}") from None
    return ArraySource(
        lambda: (x, y),
        len(x),
        name=path.name,
        kind="npz",
        path=str(path),
        split=split if x_key.endswith(f"_{split}") else None,
        labelled=y is not None,
        class_names=class_names,
        default_crop_fraction=1.0,
    )


# -- random -------------------------------------------------------------------------


class RandomSource(ImageSource):
    """Uniform noise in [0, 255]: for plumbing only; its quantization ranges mean nothing."""

    kind = "random"
    default_crop_fraction = 1.0

    def __init__(self, count: int = 100, shape: Sequence[int] = (224, 224, 3)):
        super().__init__(f"random ({count} noise images)")
        self.count = int(count)
        self.shape = tuple(int(v) for v in shape)

    def __len__(self) -> int:
        return self.count

    @property
    def warning(self) -> str:
        return (
            "calibrating on random noise, not images: quantization ranges will not match "
            "real inputs and accuracy will suffer; use real data (the default) for anything but a test"
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "shape": list(self.shape)}

    def for_input_shape(self, input_shape: Sequence[int]) -> RandomSource:
        h, w, c = (int(v) for v in input_shape)
        return RandomSource(self.count, (h, w, c))

    def _read(self, index: int) -> tuple[np.ndarray, Label]:
        # One generator per image: the same index gives the same noise in any order.
        rng = np.random.default_rng([0x5EED, index])
        return rng.integers(0, 256, size=self.shape, dtype=np.uint8), None


# -- the entry point ------------------------------------------------------------------


def open_source(spec: str | os.PathLike, *, split: str = "test") -> ImageSource:
    """The `ImageSource` that `spec` names (see the module docstring).

    Keywords win over paths: write ``./default`` for a folder named ``default``.
    `split` ("train" or "test") chooses the Fashion-MNIST split, and the
    ``x_<split>`` arrays of an .npz that has them; other sources ignore it.
    """
    if isinstance(spec, ImageSource):
        return spec
    if split not in SPLITS:
        raise BadArgument(f"split must be `train` or `test`. Received `split={split}`")
    text = os.fspath(spec).strip()
    if not text:
        raise BadArgument(f"empty calibration data: {_spec_help()}")
    keyword, _, arg = text.partition(":")
    keyword = keyword.lower().replace("_", "-")
    if text.lower() == "default":
        return open_default()
    if keyword in ("fashion-mnist", "fashionmnist"):
        if arg in SPLITS:
            return open_fashion_mnist(None, split=arg)
        return open_fashion_mnist(arg or None, split=split)
    if keyword == "random":
        count = 100
        if arg:
            if not arg.isdigit() or int(arg) < 1:
                raise BadArgument(f"`random:N` needs a positive count. Received `{text}`")
            count = int(arg)
        source = RandomSource(count)
        warnings.warn(source.warning, CalibrationWarning, stacklevel=2)
        return source
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / DATASET_FILE).is_file():
            return _open_dataset_file(path / DATASET_FILE, kind="dataset", shown_path=str(path))
        return _scan_folder(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return open_npz(path, split=split)
        if suffix in IMAGE_SUFFIXES:
            return FileListSource([(path, None)], name=path.name, kind="image", path=str(path))
        return _open_dataset_file(path)
    if path.exists():
        raise BadArgument(f"calibration data {text} is neither a file nor a folder")
    raise BadArgument(f"calibration data `{text}` not found: {_spec_help()}")
