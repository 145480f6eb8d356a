"""`llava-adapt demo`: a web page to chat with a model about an image (Gradio, the `demo` extra).

`register(app)` mounts the command on the root app. Gradio, torch and transformers are imported inside the command,
so that the CLI starts fast and works without the extra.
"""

from __future__ import annotations

from pathlib import Path

import typer

from llava_adapt.cli.eval import MODEL_HELP, _aspect
from llava_adapt.errors import LlavaAdaptError

MISSING_GRADIO = "the web demo needs Gradio, an optional extra: pip install llava-adapt[demo]"


def demo_command(
    model: str = typer.Argument(..., metavar="RUN_DIR_OR_MODEL", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 serves every interface."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port to listen on; default: the first free one from 7860."
    ),
    max_new_tokens: int = typer.Option(
        256, "--max-new-tokens", min=1, help="Answer length limit per turn (the page's initial value, and /chat's)."
    ),
    temperature: float = typer.Option(
        0.0, "--temperature", min=0.0, help="0 = greedy, reproducible (the page's initial value, and /chat's)."
    ),
    image_aspect_ratio: str | None = typer.Option(
        None, "--image-aspect-ratio", help="pad (LLaVA-1.5's pad to square) or crop; default: the processor's."
    ),
    examples: Path | None = typer.Option(
        None,
        "--examples",
        exists=True,
        file_okay=False,
        help="Folder of example images; default: the images the run's evaluation asked about.",
    ),
) -> None:
    """Serve a web page to chat with a model about an image, as LLaVA's and LLaVA-Med's demos.

    Upload an image (or pick an example) and ask; answers stream as they are generated, and follow-up questions see
    the whole conversation. The page shows the run's name and evaluation results. Model and prompt are those of
    `llava-adapt chat`. The API endpoint /chat takes (image, message) and returns the answer; with gradio_client:
    Client(URL).predict(handle_file(IMAGE), MESSAGE, api_name="/chat").
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise LlavaAdaptError(MISSING_GRADIO) from None
    from llava_adapt.evaluate.demo import build_demo, launch_demo
    from llava_adapt.evaluate.demo_page import demo_page
    from llava_adapt.evaluate.resolve import resolve_model

    resolved = resolve_model(model, image_aspect_ratio=_aspect(image_aspect_ratio))
    page = demo_page(resolved, examples_dir=examples.expanduser() if examples else None)
    launch_demo(build_demo(resolved, page, max_new_tokens, temperature), page, host, port)


def register(app: typer.Typer) -> None:
    """Mount `demo` on the root `app`."""
    app.command("demo", epilog="Example: llava-adapt demo runs/biomed-tiny --port 7860")(demo_command)
