"""`edgecnn tune`: the split, the choice, the sensitivity ranking, the ladder on an honest hard
case, the published artifact and report, and bad input.

The ladder runs on a LeNet-5 trained for a few seconds on Fashion-MNIST and then given a
function-preserving rescale (conv1's channel 0 x100, conv2's matching input weights /100): the
float model is unchanged, per-tensor int8 activations are not, and the ladder has to win the
accuracy back. Figures of real models belong to benchmarks/tune.py.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _helpers import one_error_line
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import BadArgument

DATA = Path(__file__).parent / "data"
NPZ = DATA / "fashion-mnist-test-200.npz"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist is not installed")
runner = CliRunner()


# -- the split ---------------------------------------------------------------------------------


def test_parts_are_disjoint_seeded_and_recorded():
    from calibration import open_source
    from edgecnn.tune.split import split_source

    source = open_source(str(NPZ))
    parts = split_source(source, calibration=40, validation=60, test=60, seed=3)
    sets = [set(p.indices.tolist()) for p in (parts.calibration, parts.validation, parts.test, parts.train)]
    assert [len(s) for s in sets] == [40, 60, 60, 40]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == 200  # disjoint, all used
    again = split_source(source, calibration=40, validation=60, test=60, seed=3)
    assert np.array_equal(again.validation.indices, parts.validation.indices)
    other = split_source(source, calibration=40, validation=60, test=60, seed=4)
    assert not np.array_equal(other.validation.indices, parts.validation.indices)
    record = parts.record()
    assert record["seed"] == 3 and record["validation"]["count"] == 60 and record["train"]["count"] == 40
    image, label = next(parts.test.iter_images(1))
    base_image, base_label = source._read(int(parts.test.indices[0]))
    assert label == base_label and np.array_equal(image, base_image)


def test_too_little_data_for_three_parts_is_a_clear_error():
    from calibration import open_source
    from edgecnn.tune.split import split_source

    with pytest.raises(BadArgument, match="200 images; tune needs three disjoint parts"):
        split_source(open_source(str(NPZ)))  # the default 200 calibration images leave nothing


def test_unlabelled_data_is_refused(tmp_path):
    from calibration import open_source
    from edgecnn.tune.split import split_source

    np.savez(tmp_path / "x.npz", x=np.zeros((300, 28, 28), np.uint8))
    with pytest.raises(BadArgument, match="unlabelled"):
        split_source(open_source(str(tmp_path / "x.npz")), calibration=50)


# -- the choice --------------------------------------------------------------------------------


def _cand(cid, drop, ms, size, within=None, step=1):
    from edgecnn.tune.ladder import Candidate

    c = Candidate(cid, "tflite", step, cid, {}, val_drop=drop, latency_ms=ms, bytes=size)
    c.within_budget = drop <= 1.0 if within is None else within
    return c


def test_latency_picks_the_fastest_and_size_the_smallest_within_budget():
    from edgecnn.tune.choose import choose

    cands = [_cand("slow-small", 0.5, 3.0, 100), _cand("fast-big", 0.9, 1.0, 300), _cand("out", 2.0, 0.5, 50)]
    chosen, why = choose(cands, max_drop=1.0, optimize="latency")
    assert chosen.id == "fast-big" and why["within_budget"] and "fastest" in why["rule"]
    chosen, why = choose(cands, max_drop=1.0, optimize="size")
    assert chosen.id == "slow-small" and "smallest" in why["rule"]


def test_nothing_within_budget_gives_the_best_and_says_why():
    from edgecnn.tune.choose import choose

    cands = [_cand("a", 2.0, 1.0, 100), _cand("b", 1.5, 2.0, 100, step=2)]
    chosen, why = choose(cands, max_drop=1.0, optimize="latency")
    assert chosen.id == "b" and why["within_budget"] is False
    assert "no candidate of steps 1, 2" in why["why"] and "1.50" in why["why"]


# -- the sensitivity ranking -------------------------------------------------------------------


def test_the_layer_that_adds_the_noise_ranks_first_and_takes_its_input_producer_along():
    from edgecnn.numerics import LayerError
    from edgecnn.tune.engines_tflite import PASS_THROUGH, Op
    from edgecnn.tune.sensitivity import float_set, rank

    ops = [
        Op(0, "CONV_2D", ("in",), ("c1",)),
        Op(1, "MAX_POOL_2D", ("c1",), ("p1",)),
        Op(2, "CONV_2D", ("p1",), ("c2",)),
        Op(3, "FULLY_CONNECTED", ("c2",), ("fc",)),
    ]
    # c2 is where the error appears; fc only carries it on (its own SQNR is the worst)
    errors = [
        LayerError("c1", "CONV_2D", 40.0, 0.01),
        LayerError("p1", "MAX_POOL_2D", 40.0, 0.01),
        LayerError("c2", "CONV_2D", 12.0, 0.25),
        LayerError("fc", "FULLY_CONNECTED", 11.0, 0.28),
    ]
    ranked = rank(errors, ops, PASS_THROUGH)
    assert ranked[0].layer == "c2"
    assert set(ranked[0].group) == {"c2", "p1", "c1"}  # its input computed in float too
    assert float_set(ranked, 1) == list(ranked[0].group)
    assert ranked[0].own_sqnr_db < ranked[1].own_sqnr_db


# -- float ops, read with the runtime's graph readers ------------------------------------------


def test_float_ops_are_counted_from_the_runtime_census(trained_tiny, tmp_path):
    """Every op of a float graph computes in float, none of export's int8 ones (as the manifest's
    census says), and keeping one conv float makes it count, in both formats' engines."""
    from edgecnn.runtime.graph_onnx import read_graph as read_onnx
    from edgecnn.runtime.graph_tflite import read_graph as read_tflite
    from edgecnn.tune import engines_onnx, engines_tflite

    f32, int8 = Path(trained_tiny["float32-tflite"]["path"]), trained_tiny["int8-tflite"]
    assert engines_tflite.float_op_count(f32) == len(read_tflite(f32).ops) > 0
    assert engines_tflite.float_op_count(int8["path"]) == len(int8["graph"]["float_ops"]) == 0
    assert int8["graph"]["integer_only"]
    assert engines_onnx.float_op_count(trained_tiny["int8-onnx"]["path"]) == 0
    f32_onnx = Path(trained_tiny["float32-onnx"]["path"])
    assert (
        engines_onnx.float_op_count(f32_onnx)
        == len([op for op in read_onnx(f32_onnx).ops if op.op_type != "Shape"])
        > 0
    )

    calibration = trained_tiny["x"][:16]
    conv = next(op for op in engines_tflite.graph(f32) if op.op_type == "CONV_2D")
    for floats, counted in (((), 0), (conv.outputs, None)):
        data, _ = engines_tflite.quantize(f32, calibration, float_tensors=floats)
        (tmp_path / "q.tflite").write_bytes(data)
        count = engines_tflite.float_op_count(tmp_path / "q.tflite")
        assert count == counted if counted is not None else 0 < count < len(read_tflite(f32).ops)
    prepared = engines_onnx.prepare(f32_onnx, tmp_path / "prepared.onnx")
    node = next(op for op in engines_onnx.graph(prepared) if op.op_type == "Conv")
    for floats, counted in (((), 0), ((node.name,), None)):
        data, _ = engines_onnx.quantize(
            prepared, calibration, nodes_to_exclude=floats, input_name=read_onnx(prepared).inputs[0].name
        )
        (tmp_path / "q.onnx").write_bytes(data)
        count = engines_onnx.float_op_count(tmp_path / "q.onnx")
        assert count == counted if counted is not None else 0 < count < len(read_onnx(prepared).ops)


# -- the ladder on a hard case -----------------------------------------------------------------


@pytest.fixture(scope="session")
def rescaled_lenet(tmp_path_factory):
    """A LeNet-5 trained for a few seconds, then rescaled: same function, one 100x channel."""
    import shutil

    from calibration import open_source
    from edgecnn.loading import read_keras_model, sidecar_path
    from edgecnn.training.train import train_model
    from edgecnn.tune.stress import most_active_channel, rescale_channel

    folder = tmp_path_factory.mktemp("tune-models")
    path = folder / "lenet.keras"
    train_model(
        "lenet5", "fashion-mnist:train", epochs=2, batch_size=64, lr=3e-3, limit=6000, val_limit=300, out=path, seed=0
    )
    model = read_keras_model(path)
    x = np.random.default_rng(0).random((16, 32, 32, 1)).astype(np.float32)
    before = model.predict(x, verbose=0)
    images, _ = open_source("fashion-mnist:train").load_arrays(64, seed=1)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0))).astype(np.float32) / 255.0  # 28 -> 32, unit
    channel = most_active_channel(model, "conv1", images)
    rescale_channel(model, "conv1", "conv2", channel=channel, factor=100.0)
    assert np.allclose(model.predict(x, verbose=0), before, atol=1e-5)  # function preserved
    rescaled = folder / "lenet-rescaled.keras"
    model.save(rescaled)
    shutil.copyfile(sidecar_path(path), sidecar_path(rescaled))
    return rescaled


@pytest.fixture(scope="session")
def tuned(rescaled_lenet, tmp_path_factory):
    from edgecnn.tune import TuneRequest, tune

    out = tmp_path_factory.mktemp("tuned")
    request = TuneRequest(
        str(rescaled_lenet),
        data="fashion-mnist",
        max_drop=0.5,
        formats=("tflite", "onnx"),
        qat=False,
        calib_size=200,
        val_size=400,
        test_size=400,
        max_float_layers=3,
        sensitivity_images=32,
        bench_runs=5,
        bench_min_secs=0.05,
        out=out,
    )
    return {"record": tune(request), "out": out, "request": request}


@needs_fashion_mnist
def test_plain_int8_misses_the_budget_and_the_ladder_brings_it_within(tuned):
    for fmt in ("tflite", "onnx"):
        data = tuned["record"]["formats"][fmt]
        cands = {c["id"]: c for c in data["candidates"]}
        plain = cands[f"{fmt}-1-int8"]
        assert plain["val_drop"] > 0.5 and not plain["within_budget"], (fmt, plain)
        chosen = cands[data["choice"]["id"]]
        assert data["choice"]["within_budget"] and chosen["within_budget"] and chosen["val_drop"] <= 0.5
        assert chosen["step"] >= 2
        # the ladder stopped at the first step that held: no later step ran
        assert max(c["step"] for c in data["candidates"]) == chosen["step"]
        for c in data["candidates"]:
            assert c["error"] is None and c["bytes"] > 0 and c["latency_ms"] > 0
            assert 0 < c["val_top1"] <= 1 and 0 < c["test_top1"] <= 1
        if chosen["step"] == 3:
            kept = [s for s in data["sensitivity"] if s["kept_float"]]
            assert kept and not chosen["integer_only"] and chosen["float_layers"]


@needs_fashion_mnist
def test_the_chosen_artifact_is_published_with_its_tuning_and_scores_as_recorded(tuned):
    from calibration import open_source
    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.tune.split import split_source

    record, out = tuned["record"], tuned["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "lenet-rescaled-tune-report",
        "lenet-rescaled-tuned",
        "lenet-rescaled-tuned-onnx",
    ]  # no scratch left
    parts = split_source(open_source("fashion-mnist"), calibration=200, validation=400, test=400, seed=0)
    for fmt, folder in (("tflite", "lenet-rescaled-tuned"), ("onnx", "lenet-rescaled-tuned-onnx")):
        artifact = out / folder / f"{folder}.{fmt}"
        manifest = json.loads((out / folder / "manifest.json").read_text())
        tuning = manifest["tuning"]
        assert manifest["artifact"] == artifact.name and tuning["budget"]["max_drop_points"] == 0.5
        assert (
            tuning["parts"]["validation"]["count"] == 400
            and tuning["choice"]["id"] == record["formats"][fmt]["choice"]["id"]
        )
        chosen = next(c for c in tuning["candidates"] if c["id"] == tuning["choice"]["id"])
        # the manifest's preprocessing is enough for evaluate, and it agrees with the record
        row = evaluate_artifact(artifact, parts.test)
        assert math.isclose(row["top1"], chosen["test_top1"])
    report = out / "lenet-rescaled-tune-report"
    assert {p.name for p in report.iterdir()} == {"report.md", "report.html", "report.json", "drop-latency.png"}
    md = (report / "report.md").read_text()
    assert "<- chosen" in md and "Per-layer sensitivity" in md
    assert json.loads((report / "report.json").read_text())["schema"] == "edgecnn.tune/1"


def test_compare_reads_the_tuning_record(tuned):
    """compare labels a tuned file as tuned, with the layers tune kept float, read from its manifest."""
    from edgecnn.reports import build_report

    out = tuned["out"]
    report = build_report([out / "lenet-rescaled-tuned", out / "lenet-rescaled-tuned-onnx"])
    labels = {row.facts.format: row.variant for row in report.rows}
    for fmt, folder in (("tflite", "lenet-rescaled-tuned"), ("onnx", "lenet-rescaled-tuned-onnx")):
        kept = json.loads((out / folder / "manifest.json").read_text())["float_layers"]
        assert labels[fmt].startswith("int8 tuned")
        assert (f"{len(kept)} layer" in labels[fmt]) == bool(kept)


# -- bad input: one line, exit 2 or 1, nothing written -----------------------------------------


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--max-drop", "-1"], 2, "--max-drop"),
        (["--max-drop", "nan"], 2, "--max-drop"),
        (["--qat", "--format", "onnx"], 2, "--qat"),
        (["--format", "coreml"], 2, "--format"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(tmp_path, args, code, words):
    out = tmp_path / "out"
    result = runner.invoke(app, ["tune", "lenet5", "--data", str(NPZ), "--out", str(out), *args])
    assert result.exit_code == code, result.output
    assert words in one_error_line(result)
    assert not out.exists()


def test_too_few_images_and_unlabelled_data_are_refused_before_the_model_loads(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["tune", "lenet5", "--data", str(NPZ), "--out", str(out)])
    assert result.exit_code == 2 and "three disjoint parts" in one_error_line(result)
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / f"{i}.png")
    result = runner.invoke(app, ["tune", "lenet5", "--data", str(folder), "--out", str(out)])
    assert result.exit_code == 2 and "unlabelled" in one_error_line(result)
    assert not out.exists()


def test_a_model_with_a_lambda_is_refused_and_nothing_is_written(tmp_path):
    from edgecnn._tf import import_keras

    keras = import_keras()
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "tune",
            str(path),
            "--data",
            str(NPZ),
            "--calib-size",
            "40",
            "--val-size",
            "60",
            "--test-size",
            "60",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "lambda" in one_error_line(result).lower()
    assert not out.exists()


@needs_fashion_mnist
def test_the_time_budget_stops_the_ladder_after_plain_int8_and_says_so(rescaled_lenet, tmp_path):
    from edgecnn.tune import TuneRequest, tune

    notes = []

    class Progress:
        def step(self, label, total=None): ...
        def start(self, label, total=None): ...
        def advance(self, steps=1): ...
        def note(self, message): ...
        def warn(self, message):
            notes.append(message)

    record = tune(
        TuneRequest(
            str(rescaled_lenet),
            data="fashion-mnist",
            max_drop=0.0,
            formats=("onnx",),
            qat=False,
            calib_size=100,
            val_size=200,
            test_size=200,
            time_budget=0.0001,
            bench_runs=3,
            bench_min_secs=0.01,
            out=tmp_path,
        ),
        Progress(),
    )
    data = record["formats"]["onnx"]
    assert [c["id"] for c in data["candidates"]] == ["onnx-1-int8"]
    assert "--time-budget" in data["stopped"]
    assert data["choice"]["within_budget"] is False and "no candidate of steps 1" in data["choice"]["why"]
    assert any("--time-budget" in n for n in notes) and any("within_budget: false" in n for n in notes)
    assert (tmp_path / "lenet-rescaled-tuned-onnx" / "lenet-rescaled-tuned-onnx.onnx").is_file()


def test_the_cli_maps_its_options_onto_the_request(monkeypatch, tmp_path):
    import edgecnn.tune

    seen = {}

    def fake_tune(request, progress=None):
        seen["request"] = request
        return {
            "model": "m",
            "report": str(tmp_path / "r"),
            "formats": {},
            "seconds": 1.0,
            "versions": {},
            "budget": {"max_drop_points": request.max_drop, "optimize": request.optimize},
            "parts": {"seed": 0, "source": {"name": "s"}},
        }

    monkeypatch.setattr(edgecnn.tune, "tune", fake_tune)
    result = runner.invoke(
        app,
        [
            "tune",
            "m.keras",
            "--data",
            "fashion-mnist",
            "--max-drop",
            "0.25",
            "--format",
            "all",
            "--optimize",
            "size",
            "--threads",
            "2",
            "--time-budget",
            "3",
            "--no-qat",
            "--val-size",
            "500",
            "--max-float-layers",
            "2",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    r = seen["request"]
    assert (
        r.model,
        r.data,
        r.max_drop,
        r.formats,
        r.optimize,
        r.threads,
        r.time_budget,
        r.qat,
        r.val_size,
        r.max_float_layers,
        r.out,
    ) == ("m.keras", "fashion-mnist", 0.25, ("tflite", "onnx"), "size", 2, 3.0, False, 500, 2, tmp_path)
    assert json.loads(result.stdout)["model"] == "m"


@needs_fashion_mnist
def test_qat_is_step_four_on_the_training_part_and_stays_integer_only(rescaled_lenet, tmp_path):
    from edgecnn.tune import TuneRequest, tune

    record = tune(
        TuneRequest(
            str(rescaled_lenet),
            data="fashion-mnist",
            max_drop=0.0,
            formats=("tflite",),
            qat=True,
            max_float_layers=0,
            calib_size=100,
            val_size=200,
            test_size=200,
            bench_runs=3,
            bench_min_secs=0.01,
            out=tmp_path,
        )
    )
    data = record["formats"]["tflite"]
    steps = {s["step"]: s for s in data["steps"]}
    assert "max_float_layers is 0" in steps[3]["skipped"]
    (qat,) = [c for c in data["candidates"] if c["step"] == 4]
    assert qat["error"] is None and qat["integer_only"] and qat["settings"]["train_images"] == 10000 - 500
    assert record["parts"]["train"]["count"] == 9500 and 0 < qat["test_top1"] <= 1
