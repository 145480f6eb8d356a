"""`llava-adapt demo`: the page's content, the Gradio app on 127.0.0.1 called through `gradio_client`, and the
command without Gradio installed."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants as hub_constants
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.evaluate.chat import ChatSession, load_image
from llava_adapt.evaluate.demo_page import demo_page
from llava_adapt.evaluate.resolve import resolve_model
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.manifest import COMPLETE, Manifest

pytestmark = pytest.mark.slow

MAX_NEW_TOKENS = 8
METRICS = {
    "benchmark": "synthetic",
    "model": "instruct",
    "num_items": 5,
    "metrics": {"closed_accuracy": 0.8, "n_closed": 5.0, "token_f1": 0.4321},
    "baseline": {"closed_accuracy": 0.25, "n_closed": 5.0, "token_f1": 0.0},
}


def _image(path: Path, color: str, box: tuple[int, int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (48, 40), "black")
    ImageDraw.Draw(image).ellipse(box, fill=color)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished biomed run (tiny model, full weights in instruct/) with evaluation results and predictions."""
    run = tmp_path_factory.mktemp("runs") / "demo-run"
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    model.save_pretrained(run / "instruct")
    processor.save_pretrained(run / "instruct")
    loaded = load_recipe("biomed", preset="tiny", run_dir=str(run))
    (run / "recipe.yaml").write_text(yaml.safe_dump(loaded.resolved, sort_keys=False), encoding="utf-8")
    manifest = Manifest(run / "manifest.json")
    for stage in loaded.recipe.stages:
        manifest.start_stage(stage, "hash", resume=False)
        manifest.end_stage(stage, COMPLETE, 1.0)
    bench = run / "eval" / "synthetic"
    _image(bench / "images" / "0.png", "red", (4, 4, 30, 30))
    _image(bench / "images" / "1.png", "green", (16, 8, 44, 36))
    _image(run / "outside.png", "blue", (0, 0, 20, 20))
    rows = [
        {"id": "0-lesion", "image": "images/0.png", "question": "Is there a lesion?", "prediction": "yes"},
        {"id": "0-side", "image": "images/0.png", "question": "Which side?", "prediction": "left"},
        {"id": "1-lesion", "image": "images/1.png", "question": "Is there a lesion?", "prediction": "no"},
        {"id": "1-modality", "image": "images/1.png", "question": "What modality is this?", "prediction": "CT"},
        {"id": "escape", "image": "../../outside.png", "question": "Not shown", "prediction": "no"},
        {"id": "missing", "image": "images/9.png", "question": "Not shown either", "prediction": "no"},
    ]
    (bench / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (bench / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    return run


@pytest.fixture(scope="module")
def resolved(run_dir: Path):
    return resolve_model(run_dir)


def test_page_shows_the_run_its_metrics_and_its_evaluation_images(run_dir: Path, resolved) -> None:
    page = demo_page(resolved)
    assert page.title == "demo-run"
    assert "**biomed**" in page.description and "`instruct/`" in page.description
    assert page.metrics.splitlines() == [
        "**synthetic** · 5 questions",
        "",
        "| metric | this model | before training |",
        "|---|---|---|",
        "| closed_accuracy | 0.8000 | 0.2500 |",
        "| n_closed | 5 | – |",
        "| token_f1 | 0.4321 | 0.0000 |",
    ]
    bench = run_dir / "eval" / "synthetic"
    assert [(e.image, e.question) for e in page.examples] == [
        ((bench / "images" / "0.png").resolve(), "Is there a lesion?"),
        ((bench / "images" / "1.png").resolve(), "What modality is this?"),
    ]  # one per image, the n-th with its n-th question; paths out of the benchmark folder and missing files left out
    assert len(demo_page(resolved, max_examples=1).examples) == 1


def test_examples_folder_replaces_the_runs(run_dir: Path, resolved, tmp_path: Path) -> None:
    _image(tmp_path / "b.jpg", "white", (0, 0, 10, 10))
    _image(tmp_path / "a.png", "white", (0, 0, 10, 10))
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")
    page = demo_page(resolved, examples_dir=tmp_path)
    assert [(e.image.name, e.question) for e in page.examples] == [("a.png", ""), ("b.jpg", "")]
    with pytest.raises(FileNotFoundError, match="examples folder"):
        demo_page(resolved, examples_dir=tmp_path / "nope")


class _RecordingProxy(BaseHTTPRequestHandler):
    """An HTTP(S) proxy that refuses everything and records what it was asked for: every request leaving
    127.0.0.1 goes through it while the demo runs."""

    seen: list[str] = []

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def outside_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    _RecordingProxy.seen = []
    yield _RecordingProxy.seen
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_chat_endpoint_answers_as_llava_adapt_chat(
    run_dir: Path, resolved, outside_requests: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    # The test's client is offline too: gradio_client sends telemetry unless told not to, and the headers
    # huggingface_hub builds for it fetch a registry from the Hub unless offline.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    from gradio_client import Client, handle_file

    from llava_adapt.evaluate.demo import build_demo, launch_demo

    image = _image(tmp_path / "question.png", "yellow", (10, 6, 40, 30))
    question = "What is in the image?"
    page = demo_page(resolved)
    demo = build_demo(resolved, page, max_new_tokens=MAX_NEW_TOKENS)
    url = launch_demo(demo, page, port=_free_port(), block=False)
    try:
        assert url.startswith("http://127.0.0.1:")
        client = Client(url, verbose=False, analytics_enabled=False)
        assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {"/chat"}
        answer = client.predict(handle_file(str(image)), question, api_name="/chat")

        # The page's chat: streamed, and the second turn sees the first.
        first = client.submit(handle_file(str(image)), question, [], MAX_NEW_TOKENS, 0.0, api_name="/converse")
        chat, _ = first.result()
        updates = [_text(shown[-1]["content"]) for shown, _ in first.outputs()]
        second = client.submit(
            handle_file(str(image)), "Where is it?", chat, MAX_NEW_TOKENS, 0.0, api_name="/converse"
        )
        chat, cleared = second.result()
    finally:
        demo.close()

    args = ["chat", str(run_dir), "--image", str(image), "--prompt", question, "--max-new-tokens", str(MAX_NEW_TOKENS)]
    printed = CliRunner().invoke(app, args)
    assert printed.exit_code == 0, printed.output
    assert answer and answer == printed.stdout.removesuffix("\n")

    expected = ChatSession(resolved.model, resolved.processor, load_image(image), MAX_NEW_TOKENS)
    turns = [expected.ask(question), expected.ask("Where is it?")]
    assert turns[0] == answer
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant"] and cleared == ""
    assert [_text(m["content"]) for m in chat] == [question, turns[0], "Where is it?", turns[1]]
    assert len(updates) > 1 and updates[-1] == turns[0]  # streamed: the answer grew over several updates
    assert all(later.startswith(earlier) for earlier, later in zip(updates, updates[1:], strict=False))
    assert outside_requests == []


def _text(content) -> str:
    """The text of a chat message as Gradio returns it (a string, or a list of typed parts)."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def test_command_without_gradio_says_how_to_install_it(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError, as when not installed
    result = CliRunner().invoke(app, ["demo", str(run_dir)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: the web demo needs Gradio, an optional extra: pip install llava-adapt[demo]"
    ]
    help_text = CliRunner().invoke(app, ["demo", "--help"]).output
    assert "Example: llava-adapt demo" in help_text and "/chat" in help_text
