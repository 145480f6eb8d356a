"""`llava-adapt chat`: one-shot answers, and multi-turn conversations that keep their history."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from llava_adapt.cli.errors import CommandGroup
from llava_adapt.cli.eval import register
from llava_adapt.evaluate.chat import ChatImageError, ChatSession, chat_loop, load_image
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(TinyModelConfig(), seed=0)


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model, processor = tiny
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    Image.new("RGB", (64, 64), "red").save(path)
    return path


def _cli() -> typer.Typer:
    app = typer.Typer(cls=CommandGroup)  # the root app's error handling
    register(app)
    return app


def _generate(model, processor, text: str, image: Image.Image) -> str:
    inputs = processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    return processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_second_turn_sees_the_first(tiny, image: Path) -> None:
    model, processor = tiny
    picture = load_image(image)
    session = ChatSession(model, processor, picture, max_new_tokens=6)
    first = session.ask("What color is the shape?")
    second = session.ask("Where is it?")
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert [c["type"] for c in session.messages[0]["content"]] == ["image", "text"]
    assert [c["type"] for c in session.messages[2]["content"]] == ["text"]
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the shape?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": [{"type": "text", "text": "Where is it?"}]},
    ]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert text.count("<image>") == 1 and text.count("USER:") == 2 and text.endswith("ASSISTANT:")
    assert session.prompt("next").startswith(text.removesuffix("ASSISTANT:"))
    assert second == _generate(model, processor, text, picture)


def test_chat_loop_skips_blank_lines_and_stops_at_exit(tiny, image: Path) -> None:
    model, processor = tiny
    session = ChatSession(model, processor, load_image(image), max_new_tokens=3)
    answers: list[str] = []
    turns = chat_loop(session, ["hello\n", "\n", "  more  \n", "EXIT\n", "never asked\n"], answers.append)
    assert turns == 2 and len(answers) == 2
    assert [m["content"][-1]["text"] for m in session.messages if m["role"] == "user"] == ["hello", "more"]


def test_bad_images_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ChatImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ChatImageError, match="not an image"):
        load_image(tmp_path / "broken.png")


def test_cli_conversation_from_stdin(tiny, model_dir: Path, image: Path) -> None:
    model, processor = tiny
    args = ["chat", str(model_dir), "--image", str(image), "--max-new-tokens", "6"]
    result = CliRunner().invoke(_cli(), args, input="What color is the shape?\nWhere is it?\nexit\nignored\n")
    assert result.exit_code == 0, result.output
    expected = ChatSession(model, processor, load_image(image), max_new_tokens=6)
    answers = [expected.ask("What color is the shape?"), expected.ask("Where is it?")]
    assert result.stdout == "".join(f"{a}\n" for a in answers)


def test_cli_one_shot_and_errors(tiny, model_dir: Path, image: Path, tmp_path: Path) -> None:
    model, processor = tiny
    prompt = "What color is the shape?"
    result = CliRunner().invoke(
        _cli(), ["chat", str(model_dir), "--image", str(image), "--prompt", prompt, "--max-new-tokens", "6"]
    )
    assert result.exit_code == 0, result.output
    expected = ChatSession(model, processor, load_image(image), max_new_tokens=6).ask(prompt)
    assert result.stdout == f"{expected}\n"
    missing = CliRunner().invoke(_cli(), ["chat", str(model_dir), "--image", str(tmp_path / "nope.png")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_a_model = CliRunner().invoke(_cli(), ["chat", str(tmp_path), "--image", str(image), "--prompt", "hi"])
    assert not_a_model.exit_code == 2 and "neither a run directory" in not_a_model.output
    help_text = CliRunner().invoke(_cli(), ["chat", "--help"]).output
    assert "Example: llava-adapt chat" in help_text
