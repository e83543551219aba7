"""Three disjoint, seeded parts of one labelled source: calibration, validation, test.

Every choice of `edgecnn tune` is made on the validation part and only there; the test
part gives the reported figures and is never used to choose. What is left of the source
(outside the three parts) is the training part of quantization-aware fine-tuning.
TensorFlow-free: numpy and the calibration package only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.sources import ImageSource
from edgecnn.errors import BadArgument

DEFAULT_CALIBRATION = 200
DEFAULT_VALIDATION = 1000  # at most; 1 image = 0.1 point, the smallest budget we document
DEFAULT_TEST = 1000
MIN_PART = 50  # fewer images than this in validation or test cannot resolve a 1-point budget
MIN_CALIBRATION = 10


class PartSource(ImageSource):
    """The images of `base` at `indices`, in that order: one part of a split, itself a source
    (so `edgecnn.evaluate.evaluate_artifact` scores it like any other data)."""

    def __init__(self, base: ImageSource, indices: np.ndarray, part: str, seed: int):
        super().__init__(f"{base.name} [{part}]", class_names=base.class_names)
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.part = part
        self.seed = seed
        self.kind = f"tune-{part}"
        self.path = getattr(base, "path", base.name)
        self.default_crop_fraction = base.default_crop_fraction

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labelled(self) -> bool:
        return self.base.labelled

    def _read(self, index: int):
        return self.base._read(int(self.indices[index]))

    def _entry_name(self, index: int) -> str:
        return self.base._entry_name(int(self.indices[index]))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "path": self.path,
            "part": self.part,
            "seed": self.seed,
            "of": self.base.describe(),
        }


@dataclass
class Parts:
    calibration: PartSource
    validation: PartSource
    test: PartSource
    train: PartSource | None  # the rest of the source (QAT), None when nothing is left
    seed: int

    def record(self) -> dict[str, Any]:
        """JSON-ready: sizes, seed, and enough to rebuild each part (the first indices)."""

        def part(p: PartSource | None):
            if p is None:
                return None
            return {
                "count": len(p),
                "first_indices": [int(i) for i in p.indices[:8]],
                "indices_sha256": _sha(p.indices),
            }

        return {
            "source": self.calibration.base.describe(),
            "seed": self.seed,
            "order": "numpy default_rng(seed).permutation of the source, then calibration, "
            "validation, test, training in that order",
            "calibration": part(self.calibration),
            "validation": part(self.validation),
            "test": part(self.test),
            "train": part(self.train),
        }


def _sha(indices: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def _check_size(value, option: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise BadArgument(f"{option} must be an integer of at least {low}. Received {value!r}")
    return int(value)


def split_source(
    source: ImageSource,
    *,
    calibration: int = DEFAULT_CALIBRATION,
    validation: int | None = None,
    test: int | None = None,
    seed: int = 0,
) -> Parts:
    """Split `source` into three disjoint seeded parts (and the rest, for training).

    Validation and test default to an equal share of what calibration leaves, at most 1000
    each. Too little data for three parts is a BadArgument that says what is needed.
    """
    if not source.labelled:
        where = source.describe().get("path", source.name)
        raise BadArgument(
            f"{where} is unlabelled: tune measures accuracy, so it needs labelled data "
            "(fashion-mnist, a folder with a dataset.txt of `path, label` lines, an .npz "
            "with `y` or `labels`)"
        )
    calibration = _check_size(calibration, "--calib-size", MIN_CALIBRATION)
    validation = _check_size(validation, "--val-size", MIN_PART)
    test = _check_size(test, "--test-size", MIN_PART)
    n = len(source)
    left = n - calibration
    share = max(left, 0) // 2
    validation = validation if validation is not None else min(DEFAULT_VALIDATION, share)
    test = test if test is not None else min(DEFAULT_TEST, share)
    needed = calibration + max(validation, MIN_PART) + max(test, MIN_PART)
    if validation < MIN_PART or test < MIN_PART or calibration + validation + test > n:
        raise BadArgument(
            f"{source.name} has {n} images; tune needs three disjoint parts: calibration "
            f"{calibration}, validation {max(validation, MIN_PART)} and test {max(test, MIN_PART)} "
            f"(at least {needed} images, validation and test at least {MIN_PART} each): give more "
            "data or smaller --calib-size/--val-size/--test-size"
        )
    order = source.order(seed)
    cuts = np.cumsum([calibration, validation, test])
    rest = order[cuts[2] :]
    return Parts(
        calibration=PartSource(source, order[: cuts[0]], "calibration", seed),
        validation=PartSource(source, order[cuts[0] : cuts[1]], "validation", seed),
        test=PartSource(source, order[cuts[1] : cuts[2]], "test", seed),
        train=PartSource(source, rest, "train", seed) if len(rest) else None,
        seed=seed,
    )
