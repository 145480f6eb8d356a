"""`llava-adapt convert`: an original-format LLaVA / LLaVA-Med checkpoint to a llava-hf folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def convert_command(
    source: str = typer.Argument(..., help="Original-format checkpoint: a folder or a Hub id."),
    out: Path = typer.Option(..., "--out", help="Folder to write the llava-hf model and processor into."),
    vision_tower: str | None = typer.Option(
        None, "--vision-tower", help="CLIP tower (folder or Hub id); default: the checkpoint's mm_vision_tower."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Weights dtype of the output: float32, bfloat16, float16."),
) -> None:
    """Convert an original LLaVA-1.5 / LLaVA-Med v1.5 checkpoint (LlavaLlamaForCausalLM, LlavaMistralForCausalLM)
    into a folder that stock `AutoModelForImageTextToText` and `AutoProcessor` load, with LLaVA's image padding and
    the conversation format the original was trained with (vicuna_v1, mistral_instruct)."""
    from llava_adapt.errors import InputError
    from llava_adapt.model.load import DTYPES, resolve_dtype
    from llava_adapt.model.original import convert_original

    if dtype != "auto" and dtype not in DTYPES:
        raise typer.BadParameter(f"{dtype!r} is not auto or one of {', '.join(sorted(DTYPES))}", param_hint="--dtype")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty; choose a new --out")
    convert_original(source, out, vision_tower=vision_tower, dtype=resolve_dtype(dtype))
    console.print(f"Converted {source} into {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Mount `convert` on the root `app`."""
    app.command(
        "convert",
        epilog="Example: llava-adapt convert microsoft/llava-med-v1.5-mistral-7b --out models/llava-med-v1.5-hf",
    )(convert_command)
