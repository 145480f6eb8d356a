"""The plan as rich tables: parameters, stages, the memory estimate's terms, and the teacher's requests."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


def _n(value: int | float | None, unknown: str = "unknown") -> str:
    if value is None:
        return unknown
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _records(entry: dict[str, Any]) -> str:
    count = entry.get("records")
    if count is None:
        return "? (" + entry["records_basis"].removeprefix("unknown ") + ")"
    return f"{count:,}" + ("" if entry["records_exact"] else " (expected)")


def _steps(entry: dict[str, Any]) -> str:
    steps = entry["steps"]
    text = f"{steps:,}" if steps is not None else f"{entry['steps_per_1000_records']:,} per 1,000 records"
    return text + (f" x {entry['trainings']} trainings" if entry["trainings"] > 1 else "")


def parameters_table(plan: dict[str, Any]) -> Table:
    """Parameters per model part."""
    table = Table(title=f"Parameters ({plan['model']['read_from']})")
    table.add_column("part")
    table.add_column("parameters", justify="right")
    for part, count in plan["parameters"].items():
        if part != "total":
            table.add_row(part, _n(count))
    table.add_row("total", _n(plan["parameters"]["total"]), style="bold")
    return table


def stages_table(plan: dict[str, Any]) -> Table:
    """Records, steps, trainable parameters and peak memory per stage."""
    table = Table(title=f"Stages (run directory {plan['run_dir']}; {plan['distributed']['description']})")
    for column in ("stage", "records", "steps", "trains", "trainable", "peak GB/device"):
        table.add_column(column, justify="right" if column in ("trainable", "peak GB/device") else "left")
    for name, entry in plan["stages"].items():
        if "steps" in entry:
            trains = entry["mode"] + (f" ({entry['note']})" if entry["note"] else "")
            table.add_row(name, _records(entry), _steps(entry), trains, _n(entry["trainable_parameters"]),
                          f"~{entry['peak_memory_gb']:,.1f}")  # fmt: skip
        elif "records" in entry:
            extra = "complete" if entry.get("complete") else ""
            table.add_row(name, _records(entry), "", extra, "", "")
        else:
            detail = ", ".join(entry.get("benchmarks") or []) or str(entry.get("repo_id") or "")
            table.add_row(name, "", "", detail, "", "")
    return table


def memory_table(plan: dict[str, Any]) -> Table | None:
    """The memory estimate's terms per training stage, with activation checkpointing on and off."""
    rows = {name: entry for name, entry in plan["stages"].items() if "memory_gb" in entry}
    if not rows:
        return None
    table = Table(title="Estimated peak GPU memory per device, GB: every sample at max_length (recipe plan --help)")
    columns = {"weights": "weights", "gradients": "grads", "optimizer": "AdamW", "gathered_layers": "gathered",
               "activations": "activ.", "total": "total"}  # fmt: skip
    table.add_column("stage")
    for header in columns.values():
        table.add_column(header, justify="right")
    table.add_column("ckpt on/off", justify="right")
    for name, entry in rows.items():
        gb, both = entry["memory_gb"], entry["peak_memory_gb_by_checkpointing"]
        cells = [f"{gb[column]:,.1f}" for column in columns]
        table.add_row(name, *cells, f"{both['on']:,.1f} / {both['off']:,.1f}")
    return table


def teacher_text(plan: dict[str, Any]) -> Text | None:
    """The teacher's requests, tokens and cost, in a sentence or two."""
    teacher = plan.get("generate")
    if not teacher:
        return None
    types = ", ".join(teacher["prompt_types"])
    if teacher["backend"] == "offline":
        return Text(f"generate: offline generator ({types}): {_n(teacher['requests'])} conversations, no API, no cost")
    cost = teacher["cost_usd"]
    per_1000 = teacher["cost_per_1000_captions_usd"]
    price = (
        "no price for this model (add generate.prices)" if per_1000 is None else f"${per_1000:,.2f} per 1,000 captions"
    )
    total = f"${cost:,.2f}" if cost is not None else "unknown until prepare"
    tokens_in, tokens_out = teacher["input_tokens_per_request"], teacher["output_tokens_per_request"]
    return Text(
        f"generate: {teacher['model']} ({types}): {_n(teacher['requests'], 'unknown')} requests "
        f"({teacher['requests_per_1000_captions']:,} per 1,000 captions), about {tokens_in:,.0f} input + "
        f"{tokens_out:,.0f} output tokens each (user messages measured on {teacher['user_messages_measured_on']}; "
        f"{plan['units']['tokens']}); cost {total} ({price})"
    )


def print_plan(plan: dict[str, Any], console: Console) -> None:
    """Print the plan as tables.

    Args:
        plan (`dict`): what `build_plan` returned.
        console (`Console`): where to print.
    """
    head = Text(f"{plan['recipe']}" + (f" (preset {plan['preset']})" if plan["preset"] else "") +
                f": domain {plan['domain']}; {plan['model']['vocabulary']}")  # fmt: skip
    steps = plan["model"]["text_pretraining_steps"]
    pretraining = (
        Text(
            f"before align, the tiny language model is trained {steps:,} steps on the run's text (no images; "
            "model.tiny.text_pretraining_steps)"
        )  # fmt: skip
        if steps
        else None
    )
    parts = [head, parameters_table(plan), stages_table(plan), pretraining, memory_table(plan), teacher_text(plan)]
    console.print(Group(*(part for part in parts if part is not None)))
    for name, entry in plan["stages"].items():
        if "memory_assumptions" in entry:
            console.print(Text(f"{name} memory assumes: " + "; ".join(entry["memory_assumptions"]), style="dim"))
