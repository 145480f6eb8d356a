"""The `llava-adapt` command line. One module per verb group; this file only mounts them."""

from __future__ import annotations

import logging

import typer

from llava_adapt import __version__
from llava_adapt.cli import convert as convert_cli
from llava_adapt.cli import data as data_cli
from llava_adapt.cli import demo as demo_cli
from llava_adapt.cli import domain as domain_cli
from llava_adapt.cli import eval as eval_cli
from llava_adapt.cli import publish as publish_cli
from llava_adapt.cli import recipe as recipe_cli
from llava_adapt.cli.errors import CommandGroup
from llava_adapt.scrub import ScrubFilter

app = typer.Typer(
    cls=CommandGroup,
    name="llava-adapt",
    help="Adapt LLaVA-style vision-language models to a domain.",
    epilog="Example: llava-adapt recipe run biomed --preset tiny --run-dir runs/biomed-tiny",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(domain_cli.app, name="domain")
app.add_typer(recipe_cli.app, name="recipe")
app.add_typer(data_cli.app, name="data")
publish_cli.register(app)
eval_cli.register(app)
convert_cli.register(app)
demo_cli.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llava-adapt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    for handler in logging.getLogger().handlers:  # no key or token ever reaches a log line
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())


def main() -> None:
    """Console-script entry point."""
    app()
