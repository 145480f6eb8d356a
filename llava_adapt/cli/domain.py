"""`llava-adapt domain ...`: list installed domain plugins, scaffold a new one."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.registry import registry

app = typer.Typer(
    cls=CommandGroup,
    help="Domain plugins: list them, scaffold a new one.",
    epilog="Example: llava-adapt domain new pathology --dir plugins/",
    no_args_is_help=True,
)
console = Console()


@app.command("ls", epilog="Example: llava-adapt domain ls --json")
def ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List installed domains with the package that provides each and its status."""
    rows = registry.statuses()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = Table(title="Installed domains")
    for col in ("name", "package", "description", "status"):
        table.add_column(col)
    for r in rows:
        status = "[green]ok[/green]" if r.status == "ok" else f"[red]{r.status}[/red]: {r.error}"
        table.add_row(r.name, f"{r.package} {r.version}", r.description, status)
    console.print(table)


@app.command("new", epilog="Example: llava-adapt domain new pathology --dir plugins/")
def new(
    name: str = typer.Argument(..., help="Domain name: a lower-case identifier, e.g. 'pathology'."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to create the plugin package in."),
) -> None:
    """Scaffold a domain plugin package that installs with pip and passes its own test."""
    from llava_adapt.scaffold import scaffold_domain

    package_dir = scaffold_domain(name, directory)
    console.print(
        f"Created {package_dir}\nNext:\n  pip install -e {package_dir}\n  pytest {package_dir}/tests\n"
        f"  llava-adapt recipe run {name} --preset tiny --run-dir runs/{name}-tiny   # offline, end to end"
    )
