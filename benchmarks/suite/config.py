"""What the suite measures: the models and their training settings, the variants, the quick limits.

Every model is trained from scratch on Fashion-MNIST (`edgecnn train`, 10 classes) at a
reduced input size. The heavy ones (ResNet-50, VGG-16, GoogLeNet) get a training-image
limit and few epochs so that a run stays feasible on two cores: they are not converged
models, and RESULTS.md says what each one was trained with.

The ImageNet-size rows are the MobileNets at 224x224 with random weights (`--weights none`,
1000 classes): latency and size only, never evaluated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DATASET = "fashion-mnist"


@dataclass(frozen=True)
class ModelSettings:
    """One row of the settings table: a zoo model and how the suite trains it."""

    key: str  # the row's name: file names, --models, RESULTS.md
    zoo: str  # `edgecnn models` name
    input_size: int
    alpha: float | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    limit: int | None = None  # training images (None: all 60,000)
    val_limit: int | None = None  # validation images while training (None: the 10,000 test images)
    prune_epochs: int = 2
    prune_lr: float = 1e-4
    qat_epochs: int = 1
    qat_lr: float | None = None  # None: export's own default
    qat_limit: int | None = None  # None: the whole training split
    eval_limit: int | None = None  # test images for `edgecnn evaluate` (None: all 10,000)
    imagenet: bool = False  # 224x224, random weights: benchmark only
    note: str = ""

    @property
    def trained(self) -> bool:
        return not self.imagenet


_HEAVY = (
    "not converged: trained on a subset for few epochs to stay feasible on two cores; "
    "read its accuracy as a sanity check, not as the model's"
)

MODELS: dict[str, ModelSettings] = {
    m.key: m
    for m in (
        ModelSettings("lenet5", "lenet5", 32, epochs=20, batch_size=64, lr=2e-3),
        ModelSettings("mobilenet_v1-a0.35", "mobilenet_v1", 32, alpha=0.35, epochs=10, batch_size=128, lr=3e-3),
        ModelSettings(
            "mobilenet_v1-a1.0",
            "mobilenet_v1",
            32,
            alpha=1.0,
            epochs=6,
            batch_size=128,
            lr=2e-3,
            prune_epochs=1,
            qat_limit=20000,
        ),
        ModelSettings("mobilenet_v2-a0.35", "mobilenet_v2", 32, alpha=0.35, epochs=10, batch_size=128, lr=3e-3),
        ModelSettings(
            "mobilenet_v2-a1.0",
            "mobilenet_v2",
            32,
            alpha=1.0,
            epochs=6,
            batch_size=128,
            lr=2e-3,
            prune_epochs=1,
            qat_limit=20000,
        ),
        ModelSettings(
            "resnet50",
            "resnet50",
            32,
            epochs=3,
            batch_size=64,
            lr=1e-3,
            limit=3000,
            val_limit=1000,
            prune_epochs=1,
            qat_limit=1000,
            eval_limit=2000,
            note=_HEAVY,
        ),
        ModelSettings(
            "vgg16",
            "vgg16",
            32,
            epochs=3,
            batch_size=64,
            lr=1e-4,
            limit=3000,
            val_limit=1000,
            prune_epochs=1,
            prune_lr=1e-5,
            qat_limit=1000,
            qat_lr=1e-5,
            eval_limit=2000,
            note=_HEAVY,
        ),
        ModelSettings(
            "googlenet",
            "googlenet",
            32,
            epochs=3,
            batch_size=64,
            lr=1e-3,
            limit=6000,
            val_limit=1000,
            prune_epochs=1,
            qat_limit=2000,
            eval_limit=2000,
            note=_HEAVY,
        ),
        *(
            ModelSettings(
                f"{zoo}-a{alpha}-224",
                zoo,
                224,
                alpha=alpha,
                imagenet=True,
                note="ImageNet size, random weights: latency and size only",
            )
            for zoo in ("mobilenet_v1", "mobilenet_v2")
            for alpha in (0.35, 1.0)
        ),
    )
}


@dataclass(frozen=True)
class Variant:
    """An artifact made from a trained model: the export flags, and from which .keras."""

    name: str
    flags: tuple[str, ...] = ()
    source: str = "trained"  # "trained", or "pruned" (the 50% pruned .keras)
    qat: bool = False  # `--int8 --qat`: fine-tunes first, with the model's QAT settings


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("float32"),
        Variant("float16", ("--float16",)),
        Variant("dynamic", ("--dynamic",)),
        Variant("int8", ("--int8",)),
        Variant("int16x8", ("--int16x8",)),
        Variant("qat-int8", ("--int8", "--qat"), qat=True),
        Variant("pruned50", (), source="pruned"),
        Variant("pruned50-qat-int8", ("--int8", "--qat"), source="pruned", qat=True),
    )
}
IMAGENET_VARIANTS = ("float32", "int8")
PRUNE_SPARSITY = 0.5
FORMATS = ("tflite", "onnx")
RUNTIMES = {"tflite": "litert", "onnx": "onnxruntime"}

# --quick: a smoke run of the whole pipeline, minutes per model, meaningless numbers.
QUICK_MODEL = {
    "epochs": 1,
    "limit": 300,
    "val_limit": 100,
    "prune_epochs": 1,
    "qat_epochs": 1,
    "qat_limit": 300,
    "eval_limit": 200,
}
QUICK_RUN = {"calib_samples": 32, "runs": 10, "min_secs": 0.2, "max_secs": 10.0}


def quick(model: ModelSettings) -> ModelSettings:
    if model.imagenet:
        return model
    return dataclasses.replace(model, **QUICK_MODEL)


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by every model in one run (benchmark, evaluate, calibration)."""

    threads: int
    formats: tuple[str, ...] = FORMATS
    variants: tuple[str, ...] = tuple(VARIANTS)
    calib_samples: int = 100
    warmup: int = 1
    runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 60.0
    eval_limit: int | None = None  # overrides each model's own eval_limit when given
    provider: str | None = None  # ONNX Runtime provider (cpu, cuda, tensorrt)
    step_timeout: float | None = None
    force: bool = False
    quick: bool = False

    def eval_limit_for(self, model: ModelSettings) -> int | None:
        return self.eval_limit if self.eval_limit is not None else model.eval_limit
