"""Conversation formats (chat templates) per language-model family, each marking assistant text for the loss.

Every template wraps an assistant answer *and its end-of-turn token* in `{% generation %}` ... `{% endgeneration %}`:
that span is where stage 2 takes its loss (transformers' `return_assistant_tokens_mask`), so the model learns the
answers and learns to stop. The generation prompt (`add_generation_prompt=True`) is exactly the text that precedes an
answer in training, so the prompt a model sees at inference is, token for token, a prefix of what it was trained on.

One turn of each, rendered (`{q}` = question, `{a}` = answer, `<image>` = one placeholder, `\\n` = newline):

- `vicuna_v1`, LLaVA-1.5 (Vicuna, LLaMA tokenizer): `<s> {system} USER: <image> \\n{q} ASSISTANT: {a}</s>`;
- `mistral_instruct`, LLaVA-Med v1.5 (Mistral-7B): `<s> [INST] <image> \\n{q} [/INST] {a} </s>`;
- `chatml`, Qwen2 / Qwen2.5: `<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n<image>\\n{q}<|im_end|>`
  `\\n<|im_start|>assistant\\n{a}<|im_end|>\\n`;
- `llama3`, Llama-3: `<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n{system}<|eot_id|>`, the
  user turn alike, then `<|start_header_id|>assistant<|end_header_id|>\\n\\n{a}<|eot_id|>`.

`vicuna_v1` and `mistral_instruct` reproduce LLaVA's `conv_vicuna_v1` (separator style TWO: `" "` / `"</s>"`) and
`conv_mistral_instruct` (style LLAMA_2, empty system) `get_prompt()` text, and their token ids are what LLaVA's
`preprocess_v1` feeds the model: LLaVA lets the tokenizer add the BOS and tokenizes the text before and after
`<image>` separately, so with a SentencePiece tokenizer the first word and the text after the image each start with
their own `▁` (the dummy prefix). A tokenizer reading the whole prompt adds no `▁` after a special token, so the
templates write those two spaces (`<s> `, `<image> \\n`) and one tokenization of the whole prompt gives LLaVA's
ids. This holds for LLaMA tokenizers with `legacy: false` (transformers' default, and Vicuna v1.5's setting); a
`legacy: true` tokenizer puts a `▁` after every special token and would double these two. Multi-turn text continues
directly after `</s>` (no newline), as LLaVA's. The loss covers ` {a}</s>` (the space before the answer is the
first answer token's `▁`), as LLaVA's masks.

`chatml` uses Qwen's default system prompt and `llama3` LLaVA-NeXT's (`conv_llava_llama_3`); both put the image
placeholder first in the user turn followed by a newline, as LLaVA-NeXT does.

Templates render with `trim_blocks=True` in transformers, so newlines are written as `{{ '\\n' }}`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from llava_adapt.errors import InputError

log = logging.getLogger("llava_adapt")

IMAGE_TOKEN = "<image>"

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
QWEN_SYSTEM = "You are a helpful assistant."
LLAMA3_SYSTEM = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language."
)

# The text of a message: a plain string, or the concatenated text blocks of a content list; and its image count.
_MESSAGE_PARTS = (
    "{% if message['content'] is string %}"
    "{% set text = message['content'] %}{% set n_images = 0 %}"
    "{% else %}"
    "{% set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') %}"
    "{% set n_images = message['content'] | selectattr('type', 'equalto', 'image') | list | length %}"
    "{% endif %}"
)


def _system(default: str) -> str:
    """Jinja that sets `system` to the first message's text when it is a system message, else `default`."""
    return (
        f"{{% set system = {default!r} %}}"
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set message = messages[0] %}" + _MESSAGE_PARTS + "{% set system = text %}{% endif %}"
    )


VICUNA_V1 = (
    "{% if bos_token %}{{ bos_token }} {% endif %}" + _system(VICUNA_SYSTEM) + "{{ system }} "
    "{% for message in messages %}" + _MESSAGE_PARTS + "{% if message['role'] == 'user' %}"
    "USER: {% for _ in range(n_images) %}<image> {{ '\\n' }}{% endfor %}{{ text }} "
    "{% elif message['role'] == 'assistant' %}"
    "ASSISTANT:{% generation %} {{ text }}{{ eos_token }}{% endgeneration %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

MISTRAL_INSTRUCT = (
    "{% if bos_token %}{{ bos_token }} {% endif %}" + _system("") + "{% set first = namespace(user=true) %}"
    "{% for message in messages %}" + _MESSAGE_PARTS + "{% if message['role'] == 'user' %}"
    "[INST] "
    "{% if first.user and system %}<<SYS>>{{ '\\n' }}{{ system }}{{ '\\n' }}<</SYS>>{{ '\\n\\n' }}{% endif %}"
    "{% set first.user = false %}"
    "{% for _ in range(n_images) %}<image> {{ '\\n' }}{% endfor %}{{ text }} [/INST]"
    "{% elif message['role'] == 'assistant' %}"
    "{% generation %} {{ text }} {{ eos_token }}{% endgeneration %}"
    "{% endif %}"
    "{% endfor %}"
)

CHATML = (
    _system(QWEN_SYSTEM) + "<|im_start|>system{{ '\\n' }}{{ system }}<|im_end|>{{ '\\n' }}"
    "{% for message in messages %}" + _MESSAGE_PARTS + "{% if message['role'] == 'user' %}"
    "<|im_start|>user{{ '\\n' }}{% for _ in range(n_images) %}<image>{{ '\\n' }}{% endfor %}"
    "{{ text }}<|im_end|>{{ '\\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "<|im_start|>assistant{{ '\\n' }}{% generation %}{{ text }}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)

LLAMA3 = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    + _system(LLAMA3_SYSTEM)
    + "<|start_header_id|>system<|end_header_id|>{{ '\\n\\n' }}{{ system }}<|eot_id|>"
    "{% for message in messages %}" + _MESSAGE_PARTS + "{% if message['role'] == 'user' %}"
    "<|start_header_id|>user<|end_header_id|>{{ '\\n\\n' }}"
    "{% for _ in range(n_images) %}<image>{{ '\\n' }}{% endfor %}{{ text }}<|eot_id|>"
    "{% elif message['role'] == 'assistant' %}"
    "<|start_header_id|>assistant<|end_header_id|>{{ '\\n\\n' }}"
    "{% generation %}{{ text }}<|eot_id|>{% endgeneration %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{{ '\\n\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatFormat:
    """A built-in conversation format.

    Args:
        name (`str`): its recipe name (`model.chat_template: NAME`).
        template (`str`): the Jinja chat template.
        end_of_turn (`str | None`): the token that closes an answer; `None` = the tokenizer's `eos_token`. Generation
            stops on it (it is added to the model's `generation_config.eos_token_id`).
        description (`str`): what it is for.
    """

    name: str
    template: str
    end_of_turn: str | None
    description: str


CHAT_FORMATS: dict[str, ChatFormat] = {
    f.name: f
    for f in (
        ChatFormat("vicuna_v1", VICUNA_V1, None, "LLaVA-1.5 (Vicuna, LLaMA tokenizer): LLaVA's conv_vicuna_v1"),
        ChatFormat("mistral_instruct", MISTRAL_INSTRUCT, None, "LLaVA-Med v1.5 (Mistral-7B): [INST] ... [/INST]"),
        ChatFormat("chatml", CHATML, "<|im_end|>", "Qwen2 / Qwen2.5: <|im_start|> ... <|im_end|>"),
        ChatFormat("llama3", LLAMA3, "<|eot_id|>", "Llama-3: <|start_header_id|> ... <|eot_id|>"),
    )
}
DEFAULT_FORMAT = "vicuna_v1"

# Language-model config model_type -> conversation format (Llama-3 is told apart from LLaMA-1/2 by its tokenizer).
FAMILY_FORMATS: dict[str, str] = {
    "llama": "vicuna_v1",
    "mistral": "mistral_instruct",
    "qwen2": "chatml",
    "qwen3": "chatml",
}


class ChatTemplateError(InputError, ValueError):
    """`model.chat_template` names no built-in format and no readable file, or the file marks no assistant text."""


def has_generation_markers(template: str | None) -> bool:
    """Whether a chat template marks assistant text with `{% generation %}` (needed for assistant-only loss)."""
    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None


def format_for(model_type: str | None, vocab: dict[str, int] | None = None) -> ChatFormat:
    """The conversation format of a language-model family.

    Args:
        model_type (`str | None`): the language model's `config.model_type` (`llama`, `mistral`, `qwen2`, ...).
        vocab (`dict[str, int]`, *optional*): its tokenizer's vocabulary; tells Llama-3 (`<|eot_id|>`) from
            LLaMA-1/2, and a ChatML tokenizer (`<|im_start|>`) of an unlisted family.
    """
    vocab = vocab or {}
    if model_type == "llama" and "<|eot_id|>" in vocab:
        return CHAT_FORMATS["llama3"]
    if model_type in FAMILY_FORMATS:
        return CHAT_FORMATS[FAMILY_FORMATS[model_type]]
    if "<|im_start|>" in vocab:
        return CHAT_FORMATS["chatml"]
    log.warning("no conversation format known for language model type %r; using %s", model_type, DEFAULT_FORMAT)
    return CHAT_FORMATS[DEFAULT_FORMAT]


def resolve_chat_template(value: str) -> str:
    """The Jinja text of `model.chat_template`: a built-in format name, or the path of a template file.

    Raises:
        ChatTemplateError: neither a built-in name nor a file, or the file has no `{% generation %}` markers.
    """
    if value in CHAT_FORMATS:
        return CHAT_FORMATS[value].template
    path = Path(value).expanduser()
    if not path.is_file():
        raise ChatTemplateError(
            f"model.chat_template {value!r} is neither a built-in format ({', '.join(CHAT_FORMATS)}) nor a file"
        )
    template = path.read_text(encoding="utf-8")
    if not has_generation_markers(template):
        raise ChatTemplateError(
            f"model.chat_template file {path} has no {{% generation %}} markers around assistant text; stage 2 "
            "takes its loss inside them"
        )
    return template


def end_of_turn_token(template: str, eos_token: str | None) -> str | None:
    """The token a template closes answers with: a built-in format's `end_of_turn`, else `eos_token`."""
    for chat_format in CHAT_FORMATS.values():
        if chat_format.template == template and chat_format.end_of_turn:
            return chat_format.end_of_turn
    return eos_token
