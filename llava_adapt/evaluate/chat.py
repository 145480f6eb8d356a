"""A conversation with a LLaVA model about one image (`llava-adapt chat`).

The whole conversation is rendered through the processor's chat template at every turn (the image in the first
user turn, as LLaVA puts it), so the model sees the history the way it was trained on multi-turn conversations.
`llava-adapt demo` answers through the same `ChatSession`, streaming the answer token by token (`stream`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from transformers import PreTrainedModel, ProcessorMixin, TextIteratorStreamer
from transformers.generation.streamers import BaseStreamer

from llava_adapt.errors import InputError

EXIT_WORDS = ("exit", "quit")


class ChatImageError(InputError, ValueError):
    """The image to chat about cannot be read."""


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB.

    Raises:
        ChatImageError: the file is missing or is not an image PIL can read.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ChatImageError(f"image file {path} does not exist")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ChatImageError(f"{path} is not an image that can be read ({exc})") from None


class ChatSession:
    """A multi-turn conversation about one image.

    Args:
        model (`PreTrainedModel`): the LLaVA model.
        processor (`ProcessorMixin`): its processor, with a chat template.
        image (`PIL.Image.Image`): the image the conversation is about.
        max_new_tokens (`int`, defaults to `256`): answer length limit per turn.
        temperature (`float`, defaults to `0.0`): 0 decodes greedily (reproducible), else samples.
        messages (`list[dict]`, *optional*): the conversation so far, as an earlier session's `messages` (the web
            demo keeps it per browser tab); defaults to a new conversation.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        processor: ProcessorMixin,
        image: Image.Image,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        messages: list[dict[str, Any]] | None = None,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.image = image
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.messages: list[dict[str, Any]] = list(messages or [])

    def prompt(self, text: str) -> str:
        """The text the model reads when asked `text` next: the history plus the new user turn."""
        content: list[dict[str, str]] = [{"type": "text", "text": text}]
        if not self.messages:
            content.insert(0, {"type": "image"})
        messages = [*self.messages, {"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def ask(self, text: str, streamer: BaseStreamer | None = None) -> str:
        """Answer `text` given the conversation so far, and add both turns to the history.

        Args:
            text (`str`): the user's turn.
            streamer (`BaseStreamer`, *optional*): receives the tokens as they are generated (see `stream`).
        """
        prompt = self.prompt(text)
        device = next(self.model.parameters()).device
        inputs = self.processor(text=[prompt], images=[self.image], add_special_tokens=False, return_tensors="pt")
        inputs = inputs.to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        sampling = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.processor.tokenizer.pad_token_id,
                streamer=streamer,
                **sampling,
            )
        answer = self.processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        user: list[dict[str, str]] = [{"type": "text", "text": text}]
        if not self.messages:
            user.insert(0, {"type": "image"})
        self.messages += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ]
        return answer

    def stream(self, text: str) -> Iterator[str]:
        """Answer `text` as `ask` does, yielding the answer so far each time it grows; the last value yielded is
        exactly what `ask` returns, and both turns are in the history once the iterator is exhausted.

        Args:
            text (`str`): the user's turn.
        """
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        outcome: dict[str, Any] = {}

        def generate() -> None:
            try:
                outcome["answer"] = self.ask(text, streamer)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
                streamer.end()  # unblocks the loop below

        thread = threading.Thread(target=generate, name="llava-adapt-chat", daemon=True)
        thread.start()
        partial = ""
        for piece in streamer:
            partial += piece
            if partial.strip():
                yield partial.strip()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        yield outcome["answer"]


def chat_loop(session: ChatSession, lines: Iterable[str], reply: Callable[[str], None]) -> int:
    """Answer each non-empty line of `lines` in one conversation until they end or one is `exit` / `quit`.

    Args:
        session (`ChatSession`): the conversation.
        lines (`Iterable[str]`): the user's turns (e.g. `sys.stdin`).
        reply (`Callable[[str], None]`): called with each answer.

    Returns:
        The number of turns answered.
    """
    turns = 0
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.lower() in EXIT_WORDS:
            break
        reply(session.ask(text))
        turns += 1
    return turns
