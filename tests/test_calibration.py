"""Calibration data: sources, preprocessing, the seeded batches and their two adapters.

Runs on a fresh clone: real images come from tests/data and the package's default
set; tests that read the Debian Fashion-MNIST files skip when they are absent.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import calibration
from calibration import CalibrationData, open_source, preprocess
from calibration.sources import DEFAULT_DATA_DIR, FASHION_MNIST_DIR
from edgecnn.errors import BadArgument, EdgecnnError

DATA = Path(__file__).parent / "data"
IMAGENET16 = DATA / "imagenet-16"
FASHION_NPZ = DATA / "fashion-mnist-test-200.npz"
HAVE_DEBIAN_FASHION = (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()
needs_debian_fashion = pytest.mark.skipif(
    not HAVE_DEBIAN_FASHION,
    reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)",
)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Four real photos, unlabelled, with a non-image file and a hidden file beside them."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    files = sorted((IMAGENET16 / "data").iterdir())[:4]
    for i, src in enumerate(files):
        shutil.copy(src, (folder / "sub" if i == 3 else folder) / src.name)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden.jpg").write_bytes(b"AppleDouble junk")
    return folder


# -- sources -------------------------------------------------------------------------


def test_default_set_has_about_100_labelled_real_images():
    source = open_source("default")
    assert 90 <= len(source) <= 120
    assert source.labelled and source.num_classes == 1000
    assert source.class_names[0] == "tench" and source.class_ids[0] == "n01440764"
    assert source.default_crop_fraction == 0.875
    labels = [label for _, label in source.entries]
    assert len(set(labels)) == len(labels)  # one image per class
    size = sum(p.stat().st_size for p in DEFAULT_DATA_DIR.rglob("*") if p.is_file())
    assert size < 4_500_000
    assert (DEFAULT_DATA_DIR / "README.md").is_file()
    images = list(source.iter_images())
    assert source.skipped == 0 and len(images) == len(source)
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im, _ in images)
    assert source.describe()["kind"] == "default"
    assert source.describe()["path"] == "calibration/data/imagenet-100"  # no machine path


def test_default_set_and_test_set_are_disjoint():
    default = {p.name for p, _ in open_source("default").entries}
    tests = {p.name for p, _ in open_source(str(IMAGENET16)).entries}
    assert len(tests) == 16 and not default & tests


def test_folder_with_dataset_txt_and_the_file_itself():
    source = open_source(str(IMAGENET16))
    assert len(source) == 16 and source.labelled and source.num_classes == 1000
    assert source.describe()["kind"] == "dataset"
    first_line = (IMAGENET16 / "dataset.txt").read_text().splitlines()[0]
    name, label = first_line.split(", ")
    image, got = next(source.iter_images())
    assert got == int(label)
    np.testing.assert_array_equal(image, np.asarray(Image.open(IMAGENET16 / name)))
    by_file = open_source(str(IMAGENET16 / "dataset.txt"))
    assert len(by_file) == 16 and by_file.class_names == source.class_names


def test_dataset_txt_formats(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / name)
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n\na.png 3\nb.png    4\n")
    assert [label for _, label in open_source(str(listing)).iter_images()] == [3, 4]
    listing.write_text("a.png\nb.png\n")
    source = open_source(str(listing))
    assert not source.labelled and source.class_names is None
    listing.write_text("a.png, 1\nb.png, one\n")
    with pytest.raises(BadArgument) as err:
        open_source(str(listing))
    assert "line 2" in one_line(err)
    listing.write_text("a.png, 1\nb.png\n")
    with pytest.raises(BadArgument):
        open_source(str(listing))


def test_dataset_label_out_of_range_for_synset_words(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "dataset.txt").write_text("a.png, 3\n")
    (tmp_path / "synset_words.txt").write_text("n00000001 cat\nn00000002 dog\n")
    with pytest.raises(BadArgument) as err:
        open_source(str(tmp_path))
    assert "out of range" in one_line(err)


def test_folder_without_labels(image_folder):
    source = open_source(str(image_folder))
    assert len(source) == 4  # recursive; notes.txt and hidden files ignored
    assert source.describe()["kind"] == "folder" and not source.labelled
    assert source.class_names is None and source.num_classes is None
    pairs = list(source.iter_images())
    assert len(pairs) == 4 and all(label is None for _, label in pairs)


def test_single_image_file():
    path = sorted((IMAGENET16 / "data").iterdir())[0]
    source = open_source(str(path))
    assert len(source) == 1 and next(source.iter_images())[0].shape == (227, 227, 3)


def test_corrupt_image_is_skipped_and_counted(image_folder):
    good = sorted(image_folder.glob("*.JPEG"))[0].read_bytes()
    (image_folder / "0_truncated.jpg").write_bytes(good[:400])
    (image_folder / "1_text.jpg").write_text("this is not a jpeg")
    source = open_source(str(image_folder))
    assert len(source) == 6
    images = list(source.iter_images())
    assert len(images) == 4
    assert source.skipped == 2 and "0_truncated.jpg" in source.skipped_files[0]
    assert "2" in source.warning
    # a limit is filled from the next readable images
    assert len(list(source.iter_images(3))) == 3 and source.skipped == 2
    data = CalibrationData(source, input_shape=(32, 32, 3), preprocess="tf", samples=10)
    info = data.info()
    assert info["count"] == 4 and info["skipped"] == 2 and "warning" in info


def test_no_readable_image_fails_with_one_line(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "empty.png").write_bytes(b"")
    source = open_source(str(tmp_path))
    with pytest.raises(EdgecnnError) as err:
        list(source.iter_images())
    assert not isinstance(err.value, BadArgument) and err.value.exit_code == 1
    assert "no readable image" in one_line(err)
    with pytest.raises(EdgecnnError):
        CalibrationData(source, input_shape=(8, 8, 3), preprocess="tf").arrays()


def test_empty_folder_fails_with_one_line(tmp_path):
    with pytest.raises(BadArgument) as err:
        open_source(str(tmp_path))
    assert str(tmp_path) in one_line(err) and err.value.exit_code == 2
    (tmp_path / "readme.md").write_text("no images")
    with pytest.raises(BadArgument):
        open_source(str(tmp_path))


@pytest.mark.parametrize("spec", ["no/such/folder", "nosuch.npz", "imagenet", "fashion-mnist:/no/such/dir"])
def test_unknown_spec_or_missing_path(spec):
    with pytest.raises(BadArgument) as err:
        open_source(spec)
    assert one_line(err)


def test_bad_split():
    with pytest.raises(BadArgument):
        open_source("default", split="validation")


def test_npz_shipped_fashion_slice():
    source = open_source(str(FASHION_NPZ))
    assert len(source) == 200 and source.labelled and source.kind == "npz"
    assert source.default_crop_fraction == 1.0
    image, label = next(source.iter_images())
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8 and label == 9
    x, y = source.load_arrays()
    assert x.shape == (200, 28, 28, 1) and y.dtype == np.int64 and set(y) == set(range(10))


def test_npz_float_rgb_and_keras_style_splits(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 12, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "unit.npz", images=pixels / 255.0, labels=np.eye(4)[[0, 1, 2, 3, 0]])
    source = open_source(str(tmp_path / "unit.npz"))
    x, y = source.load_arrays()
    np.testing.assert_array_equal(x, pixels)
    assert y.tolist() == [0, 1, 2, 3, 0]
    np.savez(
        tmp_path / "mnist.npz", x_train=pixels[:3, ..., 0], y_train=[1, 2, 3], x_test=pixels[3:, ..., 0], y_test=[4, 5]
    )
    assert len(open_source(str(tmp_path / "mnist.npz"), split="train")) == 3
    test = open_source(str(tmp_path / "mnist.npz"))
    assert len(test) == 2 and test.load_arrays()[1].tolist() == [4, 5]
    assert test.describe()["split"] == "test"
    np.savez(tmp_path / "nolabels.npz", x=pixels[..., :1])
    assert not open_source(str(tmp_path / "nolabels.npz")).labelled


def test_npz_bad_contents(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(BadArgument) as err:
        open_source(str(tmp_path / "bad.npz"))
    assert "(2, 8, 8, 4)" in one_line(err)
    np.savez(tmp_path / "nox.npz", weights=np.zeros(3))
    with pytest.raises(BadArgument):
        open_source(str(tmp_path / "nox.npz"))
    (tmp_path / "fake.npz").write_text("not a zip")
    with pytest.raises(BadArgument):
        open_source(str(tmp_path / "fake.npz"))


def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path):
    with np.load(FASHION_NPZ) as npz:
        x, y = npz["x"], npz["y"]
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x[:50])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y[:50])
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[50:])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y[50:])
    test = open_source(f"fashion-mnist:{tmp_path}")
    assert len(test) == 50 and test.num_classes == 10 and test.class_names[9] == "Ankle boot"
    got_x, got_y = test.load_arrays()
    np.testing.assert_array_equal(got_x[..., 0], x[:50])
    np.testing.assert_array_equal(got_y, y[:50])
    train = open_source(f"fashion-mnist:{tmp_path}", split="train")
    assert len(train) == 150 and train.describe()["split"] == "train"
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03junk"))
    with pytest.raises(EdgecnnError) as err:
        open_source(f"fashion-mnist:{tmp_path}").load_arrays()
    assert one_line(err)


@needs_debian_fashion
def test_fashion_mnist_debian_package():
    test = open_source("fashion-mnist")
    assert len(test) == 10_000 and test.describe()["split"] == "test"
    assert len(open_source("fashion-mnist", split="train")) == 60_000
    assert len(open_source("fashion-mnist:train")) == 60_000
    x, y = test.load_arrays(200)
    with np.load(FASHION_NPZ) as npz:  # the shipped slice is the first 200 test images
        np.testing.assert_array_equal(x[..., 0], npz["x"])
        np.testing.assert_array_equal(y, npz["y"])


def test_random_only_when_asked_and_warns():
    with pytest.warns(calibration.CalibrationWarning):
        source = open_source("random:7")
    assert len(source) == 7 and "random noise" in source.warning
    assert source.describe()["kind"] == "random"
    shaped = source.for_input_shape((20, 24, 1))
    first = [im for im, _ in shaped.iter_images(seed=3)]
    again = [im for im, _ in shaped.iter_images(seed=3)]
    assert first[0].shape == (20, 24, 1) and all(np.array_equal(a, b) for a, b in zip(first, again))
    with pytest.raises(BadArgument):
        open_source("random:zero")


def test_seeded_order_is_a_deterministic_subset():
    source = open_source(str(FASHION_NPZ))
    a = [label for _, label in source.iter_images(20, seed=1)]
    b = [label for _, label in source.iter_images(20, seed=1)]
    c = [label for _, label in source.iter_images(20, seed=2)]
    unseeded = [label for _, label in source.iter_images(20)]
    assert a == b and a != c
    with np.load(FASHION_NPZ) as npz:
        assert unseeded == npz["y"][:20].tolist()


# -- preprocessing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.stack([im for im, _ in open_source(str(IMAGENET16)).iter_images(4)])


@pytest.fixture(scope="module")
def keras_preprocess_input():
    pytest.importorskip("tf_keras", reason="tf_keras (edgecnn[export]) is not installed")
    from edgecnn._tf import import_keras

    return import_keras().applications.imagenet_utils.preprocess_input


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch"])
def test_preprocess_matches_keras(photos, keras_preprocess_input, mode):
    raw = preprocess(photos, input_shape=(224, 224, 3), mode="raw", crop_fraction=0.875)
    expected = keras_preprocess_input(raw.copy(), data_format="channels_last", mode=mode)
    got = preprocess(photos, input_shape=(224, 224, 3), mode=mode, crop_fraction=0.875)
    assert got.dtype == np.float32 and got.shape == (4, 224, 224, 3)
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float32))


def test_preprocess_values_by_hand(photos):
    raw = preprocess(photos[0], input_shape=(64, 64, 3), mode="raw", crop_fraction=1.0)
    assert raw.shape == (1, 64, 64, 3) and raw.min() >= 0 and raw.max() <= 255
    assert np.all(raw == np.round(raw))  # whole pixels
    caffe = preprocess(photos[0], input_shape=(64, 64, 3), mode="caffe", crop_fraction=1.0)
    np.testing.assert_allclose(caffe[..., 0], raw[..., 2] - 103.939, atol=1e-4)
    np.testing.assert_allclose(caffe[..., 2], raw[..., 0] - 123.68, atol=1e-4)
    tf = preprocess(photos[0], input_shape=(64, 64, 3), mode="tf", crop_fraction=1.0)
    assert -1.0 <= tf.min() and tf.max() <= 1.0
    np.testing.assert_allclose(tf, raw / 127.5 - 1, atol=1e-6)
    unit = preprocess(photos[0], input_shape=(64, 64, 3), mode="unit", crop_fraction=1.0)
    np.testing.assert_allclose(unit, raw / 255, atol=1e-7)
    with pytest.raises(BadArgument):
        preprocess(photos[0], input_shape=(64, 64, 3), mode="inception", crop_fraction=1.0)


def test_central_crop_and_bilinear_resize(photos):
    assert calibration.center_crop_box(256, 256, 224, 224, 0.875) == (16, 16, 240, 240)
    assert calibration.center_crop_box(300, 200, 100, 100, 1.0) == (50, 0, 250, 200)
    assert calibration.center_crop_box(200, 300, 100, 50, 1.0) == (0, 100, 200, 200)  # wide output
    assert calibration.center_crop_box(200, 300, 50, 100, 1.0) == (25, 0, 175, 300)  # tall output
    # 227 px, crop 0.875 -> the centred 199 px square, then Pillow bilinear
    box = calibration.center_crop_box(227, 227, 224, 224, 0.875)
    assert box == (14, 14, 213, 213)
    pil = Image.fromarray(photos[1]).resize((224, 224), Image.Resampling.BILINEAR, box=box)
    got = preprocess(photos[1], input_shape=(224, 224, 3), mode="raw", crop_fraction=0.875)
    np.testing.assert_array_equal(got[0], np.asarray(pil, np.float32))
    # a crop that already has the output size is taken as it is
    same = preprocess(photos[1], input_shape=(227, 227, 3), mode="raw", crop_fraction=1.0)
    np.testing.assert_array_equal(same[0], photos[1].astype(np.float32))


def test_grayscale_and_rgb_conversions(photos):
    with np.load(FASHION_NPZ) as npz:
        gray = npz["x"][:3]  # N x H x W
    rgb = preprocess(gray, input_shape=(28, 28, 3), mode="raw", crop_fraction=1.0)
    assert rgb.shape == (3, 28, 28, 3)
    for ch in range(3):  # replicated, not tinted
        np.testing.assert_array_equal(rgb[..., ch], gray.astype(np.float32))
    one = preprocess(gray[0][..., None], input_shape=(32, 32, 1), mode="unit", crop_fraction=1.0)
    assert one.shape == (1, 32, 32, 1) and one.max() <= 1.0
    luma = preprocess(photos[0], input_shape=(227, 227, 1), mode="raw", crop_fraction=1.0)
    expected = np.asarray(Image.fromarray(photos[0]).convert("L"), np.float32)
    np.testing.assert_array_equal(luma[0, ..., 0], expected)
    r, g, b = (photos[0][..., i].astype(np.float64) for i in range(3))
    np.testing.assert_allclose(luma[0, ..., 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1.0)
    with pytest.raises(BadArgument):
        preprocess(gray[0], input_shape=(28, 28, 1), mode="caffe", crop_fraction=1.0)


def test_preprocess_list_of_mixed_sizes_and_bad_input():
    images = [np.zeros((40, 60, 3), np.uint8), np.full((10, 10), 200, np.uint8)]
    out = preprocess(images, input_shape=(16, 16, 3), mode="unit", crop_fraction=1.0)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1], 200 / 255, rtol=1e-6)
    with pytest.raises(BadArgument):
        preprocess(np.zeros((8, 8, 3), np.float32), input_shape=(8, 8, 3), mode="tf", crop_fraction=1.0)
    with pytest.raises(BadArgument):
        preprocess(images, input_shape=(16, 16, 2), mode="tf", crop_fraction=1.0)
    with pytest.raises(BadArgument):
        preprocess(images, input_shape=(16, 16, 3), mode="tf", crop_fraction=1.5)


def test_decode_grayscale_and_palette_files(tmp_path):
    Image.new("L", (9, 7), 77).save(tmp_path / "gray.jpg")
    Image.new("P", (5, 5), 3).save(tmp_path / "palette.png")
    Image.new("RGBA", (5, 5), (1, 2, 3, 0)).save(tmp_path / "alpha.png")
    assert calibration.decode_image(tmp_path / "gray.jpg").shape == (7, 9, 1)
    assert calibration.decode_image(tmp_path / "palette.png").shape == (5, 5, 3)
    assert calibration.decode_image(tmp_path / "alpha.png")[0, 0].tolist() == [1, 2, 3]
    data = CalibrationData(str(tmp_path), input_shape=(16, 16, 3), preprocess="raw")
    assert data.arrays().shape == (3, 16, 16, 3)


# -- CalibrationData and its adapters -------------------------------------------------------


def test_calibration_data_is_deterministic():
    kwargs = dict(input_shape=(64, 64, 3), preprocess="tf", samples=8)
    a = CalibrationData(str(IMAGENET16), seed=0, **kwargs)
    b = CalibrationData(open_source(str(IMAGENET16)), seed=0, **kwargs)
    c = CalibrationData(str(IMAGENET16), seed=1, **kwargs)
    assert a.arrays().tobytes() == b.arrays().tobytes()
    assert a.info()["sha256"] == b.info()["sha256"] != c.info()["sha256"]
    assert not np.array_equal(a.arrays(), c.arrays())
    assert a.labels().tolist() == b.labels().tolist() != c.labels().tolist()
    first, second = list(a), list(a)
    assert len(first) == 8 and all(np.array_equal(x, y) for x, y in zip(first, second))
    assert all(x.shape == (1, 64, 64, 3) and x.dtype == np.float32 for x in first)
    np.testing.assert_array_equal(np.concatenate(first), a.arrays())
    assert not a.arrays().flags.writeable  # the cache cannot be changed by accident


def test_calibration_data_info_and_short_source():
    data = CalibrationData(str(IMAGENET16), input_shape=(32, 32, 3), preprocess="caffe", samples=100)
    info = data.info()
    assert len(data) == 16 and info["count"] == 16 and "16" in info["note"]
    assert info["source"]["kind"] == "dataset" and info["preprocess"] == "caffe"
    assert info["crop_fraction"] == 0.875 and info["seed"] == 0 and info["skipped"] == 0
    import json

    json.dumps(info)  # JSON-ready for the manifest
    fashion = CalibrationData(
        str(FASHION_NPZ), input_shape=(32, 32, 1), preprocess="unit", samples=10, crop_fraction=None
    )
    assert fashion.info()["crop_fraction"] == 1.0 and fashion.arrays().shape == (10, 32, 32, 1)
    assert fashion.labels().shape == (10,)
    with pytest.raises(BadArgument):
        CalibrationData("default", input_shape=(32, 32, 3), preprocess="tf", samples=0)


def test_default_calibration_data_for_an_imagenet_model():
    data = CalibrationData("default", input_shape=(96, 96, 3), preprocess="tf")
    assert data.arrays().shape == (100, 96, 96, 3)
    assert data.info()["source"]["kind"] == "default" and data.labels() is not None


def test_representative_dataset_shapes_and_dtypes():
    data = CalibrationData(str(FASHION_NPZ), input_shape=(32, 32, 1), preprocess="unit", samples=5)
    gen = data.representative_dataset()
    for _ in range(2):  # the converter may call it more than once
        items = list(gen())
        assert len(items) == 5
        for item in items:
            assert isinstance(item, list) and len(item) == 1
            assert item[0].shape == (1, 32, 32, 1) and item[0].dtype == np.float32


def test_ort_reader_is_fresh_each_call():
    pytest.importorskip("onnx", reason="onnx (edgecnn[export]) is not installed")
    from onnxruntime.quantization import CalibrationDataReader

    data = CalibrationData(str(FASHION_NPZ), input_shape=(28, 28, 1), preprocess="unit", samples=6)
    reader = data.ort_reader("input_1")
    assert isinstance(reader, CalibrationDataReader) and len(reader) == 6
    items = list(reader)
    assert len(items) == 6 and reader.get_next() is None  # read once
    for item, expected in zip(items, data):
        assert set(item) == {"input_1"}
        np.testing.assert_array_equal(item["input_1"], expected)
    again = data.ort_reader("input_1")
    assert len(list(iter(again.get_next, None))) == 6
    nchw = data.ort_reader("x", layout="NCHW").get_next()["x"]
    assert nchw.shape == (1, 1, 28, 28) and nchw.flags.c_contiguous


@pytest.fixture(scope="module")
def tiny_onnx_model(tmp_path_factory):
    onnx = pytest.importorskip("onnx", reason="onnx (edgecnn[export]) is not installed")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["nchw", "w"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["output"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16, 16, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 16, 16])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime reads, whatever the onnx package writes by default
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, path)
    return path


def test_ort_static_quantization_is_reproducible(tiny_onnx_model, tmp_path):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    data = CalibrationData("default", input_shape=(16, 16, 3), preprocess="tf", samples=20)
    outputs = []
    for i in range(2):
        out = tmp_path / f"q{i}.onnx"
        quantize_static(
            str(tiny_onnx_model),
            str(out),
            data.ort_reader("input"),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=False,
            calibrate_method=CalibrationMethod.MinMax,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_tflite_int8_conversion_with_representative_dataset():
    pytest.importorskip("tf_keras", reason="tf_keras (edgecnn[export]) is not installed")
    from edgecnn._tf import import_keras

    keras = import_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    data = CalibrationData("default", input_shape=(16, 16, 3), preprocess="tf", samples=10)
    blobs = []
    for _ in range(2):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = data.representative_dataset()
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        blobs.append(converter.convert())
    assert blobs[0] == blobs[1]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    details = Interpreter(model_content=blobs[0]).get_input_details()[0]
    scale, _ = details["quantization"]
    assert details["dtype"] == np.int8 and 0.005 < scale < 0.01  # the range of [-1, 1]


def test_iter_batches_streams_a_labelled_source():
    batches = list(calibration.iter_batches(str(IMAGENET16), input_shape=(32, 32, 3), preprocess="caffe", batch_size=5))
    assert [len(x) for x, _ in batches] == [5, 5, 5, 1]
    labels = np.concatenate([y for _, y in batches])
    assert labels.tolist() == [label for _, label in open_source(str(IMAGENET16)).entries]
    whole = CalibrationData(str(IMAGENET16), input_shape=(32, 32, 3), preprocess="caffe", samples=None, seed=None)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), whole.arrays())


# -- the runtime side -------------------------------------------------------------------------


def test_package_imports_no_tensorflow_or_onnx():
    code = (
        "import sys, calibration\n"
        "s = calibration.open_source('default')\n"
        "d = calibration.CalibrationData(s, input_shape=(8, 8, 3), preprocess='tf', samples=2)\n"
        "d.arrays(); d.info(); list(d.representative_dataset()())\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'keras', 'onnx', 'onnxruntime', 'torch'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_random_warning_is_a_python_warning_too():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_source("random")
    assert [w.category for w in caught] == [calibration.CalibrationWarning]
