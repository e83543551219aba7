"""From uint8 pixels to the float32 NHWC input a model was trained on.

Preprocessing belongs to the model (its registry row names the mode) and is
recorded in every manifest, so the same function serves calibration, training
and `edgecnn evaluate`. Only numpy and Pillow: this runs on boards without TensorFlow.

Geometry first, then values:

1. colour: grayscale is replicated to RGB when the model wants 3 channels; RGB
   becomes ITU-R 601 luma (Pillow mode "L") when it wants 1;
2. central crop: the largest centred box with the model's aspect ratio (a square
   for square inputs), times `crop_fraction` (0.875 for ImageNet-style photos,
   1.0 for small prepared images such as Fashion-MNIST);
3. bilinear resize with Pillow to the model's (height, width);
4. values, exactly as `keras.applications.imagenet_utils.preprocess_input`
   computes them in float32 for "tf", "caffe" and "torch".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from calibration.errors import BadArgument


class PreprocessMode(enum.StrEnum):
    """How pixels in [0, 255] become model input; the value is what manifests record."""

    TF = "tf"  # RGB scaled to [-1, 1]                       (MobileNets, GoogLeNet)
    CAFFE = "caffe"  # BGR, ImageNet mean subtracted, no scaling   (VGG, ResNet, AlexNet)
    TORCH = "torch"  # [0, 1], then ImageNet mean/std per channel
    UNIT = "unit"  # scaled to [0, 1]                            (LeNet-5)
    RAW = "raw"  # the pixels as float32, unchanged


PREPROCESS_MODES: tuple[str, ...] = tuple(m.value for m in PreprocessMode)

# The constants of keras.applications.imagenet_utils, in the same order.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)


def check_mode(mode: str) -> PreprocessMode:
    """The mode for `mode`, or BadArgument naming the modes that exist."""
    try:
        return PreprocessMode(str(mode).strip().lower())
    except ValueError:
        raise BadArgument(f"Unknown preprocessing mode `{mode}`. Available: {', '.join(PREPROCESS_MODES)}.") from None


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """`(height, width, channels)` as ints, channels 1 or 3, or BadArgument."""
    try:
        h, w, c = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise BadArgument(
            f"input_shape must be (height, width, channels). Received `input_shape={input_shape}`"
        ) from None
    if h < 1 or w < 1 or c not in (1, 3):
        raise BadArgument(
            "input_shape must be (height, width, channels) with channels 1 or 3. "
            f"Received `input_shape={tuple(input_shape)}`"
        )
    return h, w, c


def check_crop_fraction(crop_fraction: float) -> float:
    try:
        value = float(crop_fraction)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise BadArgument(f"crop_fraction must be in (0, 1]. Received `crop_fraction={crop_fraction}`")
    return value


def center_crop_box(
    width: int, height: int, out_width: int, out_height: int, crop_fraction: float
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred crop of a `width` x `height` image
    for an output of `out_width` x `out_height` (sizes as Pillow gives them: width first).

    The box has the output's aspect ratio and is as large as fits, then scaled by
    `crop_fraction`; sizes are rounded to whole pixels and offsets floored, as
    torchvision's CenterCrop does.
    """
    aspect = out_width / out_height
    crop_w = min(width, height * aspect)
    crop_h = crop_w / aspect
    crop_w = max(1, min(width, round(crop_w * crop_fraction)))
    crop_h = max(1, min(height, round(crop_h * crop_fraction)))
    left = (width - crop_w) // 2
    top = (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def _to_pil(image: np.ndarray) -> Image.Image:
    if image.ndim == 2:
        return Image.fromarray(image, "L")
    if image.ndim == 3 and image.shape[-1] == 1:
        return Image.fromarray(image[..., 0], "L")
    if image.ndim == 3 and image.shape[-1] == 3:
        return Image.fromarray(image, "RGB")
    raise BadArgument(f"an image must be HxW, HxWx1 or HxWx3 uint8. Received shape {tuple(image.shape)}")


def resize_image(image: np.ndarray, *, input_shape: Sequence[int], crop_fraction: float) -> np.ndarray:
    """Colour conversion, central crop and bilinear resize of one uint8 image: uint8 (h, w, c)."""
    h, w, c = check_input_shape(input_shape)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise BadArgument(f"images must be uint8 pixels in [0, 255]. Received dtype {image.dtype}")
    pil = _to_pil(image)
    wanted = "RGB" if c == 3 else "L"
    if pil.mode != wanted:
        pil = pil.convert(wanted)  # L -> RGB replicates; RGB -> L is ITU-R 601 luma
    box = center_crop_box(pil.width, pil.height, w, h, crop_fraction)
    if box != (0, 0, pil.width, pil.height) or pil.size != (w, h):
        pil = pil.resize((w, h), Image.Resampling.BILINEAR, box=box)
    out = np.asarray(pil, dtype=np.uint8)
    return out.reshape(h, w, c)


def normalize(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Pixel values (any shape NHWC/HWC, channels last) to float32 model input.

    "tf", "caffe" and "torch" repeat keras.applications.imagenet_utils operation by
    operation in float32, so the results are bit-identical to Keras's.
    """
    mode = check_mode(mode)
    x = np.array(pixels, dtype=np.float32)  # always a fresh array: the steps work in place
    if mode is PreprocessMode.RAW:
        return x
    if mode is PreprocessMode.UNIT:
        x /= 255.0
        return x
    if mode is PreprocessMode.TF:
        x /= 127.5
        x -= 1.0
        return x
    if x.shape[-1] != 3:
        raise BadArgument(
            f"preprocessing mode `{mode.value}` needs 3 channels (RGB). Received {x.shape[-1]} channel(s)"
        )
    if mode is PreprocessMode.TORCH:
        x /= 255.0
        for i in range(3):
            x[..., i] -= TORCH_MEAN_RGB[i]
        for i in range(3):
            x[..., i] /= TORCH_STD_RGB[i]
        return x
    # caffe: RGB -> BGR, then subtract the BGR mean
    x = np.ascontiguousarray(x[..., ::-1])
    for i in range(3):
        x[..., i] -= CAFFE_MEAN_BGR[i]
    return x


def _as_image_list(images: np.ndarray | Iterable[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        if images.ndim == 3 and images.shape[-1] not in (1, 3):
            return list(images)  # N x H x W grayscale
        if images.ndim in (2, 3):
            return [images]
        raise BadArgument(f"images must be HxW, HxWxC, NxHxW or NxHxWxC uint8. Received shape {tuple(images.shape)}")
    return [np.asarray(im) for im in images]


def preprocess(
    images_uint8: np.ndarray | Iterable[np.ndarray],
    *,
    input_shape: Sequence[int],
    mode: str,
    crop_fraction: float,
) -> np.ndarray:
    """uint8 image(s) to a float32 NHWC batch for a model with `input_shape` (h, w, c).

    `images_uint8` is one image (HxW, HxWx1, HxWx3), a batch (NxHxW, NxHxWxC) or a
    list of images of any sizes. The result always has a batch axis: (N, h, w, c),
    N = 1 for a single image.
    """
    h, w, c = check_input_shape(input_shape)
    crop_fraction = check_crop_fraction(crop_fraction)
    mode = check_mode(mode)
    images = _as_image_list(images_uint8)
    out = np.empty((len(images), h, w, c), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = resize_image(image, input_shape=(h, w, c), crop_fraction=crop_fraction)
    return normalize(out, mode)
