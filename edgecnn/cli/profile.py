"""`edgecnn models` and `edgecnn profile`: the zoo and where a model's cost is."""

from __future__ import annotations

from typing import Optional

import typer

from edgecnn.cli._app import (
    app,
    console,
    error_console,
    one_line_errors,
    print_json,
    shape_text,
    si_bytes,
    si_count,
    trust_model_option,
)


@app.command("models")
@one_line_errors
def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects."),
) -> None:
    """List the model zoo with each model's default input shape, parameters and MACs.

    Counting builds each model once (about a minute for the zoo); the results are
    cached in ~/.cache/edgecnn (EDGECNN_CACHE_DIR) until the model code changes.
    """
    from edgecnn.profiler import zoo_costs

    with error_console.status("counting the zoo") as status:
        rows = zoo_costs(progress=lambda name: status.update(f"building {name}"))
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="edgecnn model zoo", title_justify="left")
    table.add_column("Model")
    table.add_column("Aliases")
    table.add_column("Input", justify="right")
    table.add_column("Params", justify="right")
    table.add_column("MACs", justify="right")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["aliases"]),
            shape_text(row["input_shape"]),
            si_count(row["params"]),
            si_count(row["macs"]),
        )
    console.print(table)


@app.command("profile")
@one_line_errors
def profile_command(
    model: str = typer.Argument(
        ..., help="A zoo name or alias (see `edgecnn models`), or a saved Keras model (.keras, .h5)."
    ),
    input_size: Optional[int] = typer.Option(
        None, "--input-size", help="Input height and width (default: the model's)."
    ),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Width multiplier (MobileNets)."),
    classes: Optional[int] = typer.Option(None, "--classes", help="Number of classes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    trust_model: bool = trust_model_option(),
) -> None:
    """Per-layer parameters, multiply-adds and activation memory, with the totals.

    MACs count convolutions and dense layers (the papers' convention); activation
    memory is batch 1, float32, and the peak is what a perfect memory planner needs.
    """
    from edgecnn.errors import BadArgument
    from edgecnn.loading import is_model_file
    from edgecnn.profiler import profile_model_file, profile_zoo_model

    if is_model_file(model):
        given = [flag for flag, value in (("--alpha", alpha), ("--classes", classes)) if value is not None]
        if given:
            raise BadArgument(f"{' and '.join(given)} apply to zoo models; {model} is a saved model")
        profile = profile_model_file(model, input_size=input_size, trust_model=trust_model)
    else:
        profile = profile_zoo_model(model, input_size=input_size, alpha=alpha, classes=classes)
    if as_json:
        print_json(profile.to_dict())
        return
    from rich.table import Table

    table = Table(
        title=f"{profile.model}  (input {shape_text(profile.input_shape)}, batch 1, float32)", title_justify="left"
    )
    table.add_column("Layer", overflow="fold")
    table.add_column("Type")
    table.add_column("Output", justify="right")
    table.add_column("Params", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("Activation", justify="right")
    for layer in profile.layers:
        table.add_row(
            layer.name,
            layer.type,
            shape_text(layer.output_shape),
            f"{layer.params:,}" if layer.params else "",
            si_count(layer.macs) if layer.macs else "",
            si_bytes(layer.activation_bytes),
        )
    console.print(table)
    console.print(
        f"params            {si_count(profile.params)} ({profile.params:,})\n"
        f"MACs              {si_count(profile.macs)} ({profile.macs:,})\n"
        f"peak activations  {si_bytes(profile.peak_activation_bytes)} "
        f"(at {profile.peak_activation_layer})\n"
        f"weights           {si_bytes(profile.weight_bytes_float32)} float32, "
        f"~{si_bytes(profile.weight_bytes_int8)} int8",
        highlight=False,
    )
