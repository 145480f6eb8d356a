"""What LLaVA's own training code feeds the model for a conversation, rewritten for the tests from its documented
behaviour (haotian-liu/LLaVA `llava/conversation.py`, `llava/mm_utils.py`, `llava/train/train.py`).

- `preprocess_multimodal`: the turn holding `<image>` becomes `"<image>\\n" + text_without_placeholder.strip()`;
- `get_prompt()` of `conv_vicuna_v1` (style TWO, sep `" "`, sep2 `"</s>"`):
  `{system} USER: {q} ASSISTANT: {a}</s>USER: ...`, and of `conv_mistral_instruct` (style LLAMA_2, empty
  system): `[INST] {q} [/INST] {a} </s>[INST] ...`;
- `tokenizer_image_token`: the prompt is split on `<image>`, each chunk tokenized on its own (with BOS, which later
  chunks drop), and one `-200` goes between the chunks;
- `preprocess_v1` / `preprocess_llama_2`: the prompt is split into rounds on `"</s>"` and each round on the
  assistant separator; the BOS and, per round, `len(tokenize(instruction + sep)) - 2` tokens are masked, with a `-1`
  correction on rounds after the first for a non-legacy tokenizer (tokenizers >= 0.14), then everything after the
  last round. When the counted length differs from the sequence length the whole sample is masked ("tokenization
  mismatch ... (ignored)").
"""

from __future__ import annotations

IMAGE_INDEX = -200
IGNORE_INDEX = -100
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def multimodal_turns(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """LLaVA's `preprocess_multimodal`: the image placeholder moves to the front of its turn."""
    out = []
    for role, text in turns:
        if "<image>" in text:
            text = "<image>\n" + text.replace("<image>", "").strip()
        out.append((role, text))
    return out


def vicuna_v1_prompt(turns: list[tuple[str, str]], system: str = VICUNA_SYSTEM) -> str:
    """`conv_vicuna_v1.get_prompt()` for `(role, text)` turns, roles `human` / `gpt`; an empty last text = the
    generation prompt."""
    prompt = system + " "
    for i, (role, text) in enumerate(turns):
        name = "USER" if role == "human" else "ASSISTANT"
        prompt += f"{name}: {text}{' ' if i % 2 == 0 else '</s>'}" if text else f"{name}:"
    return prompt


def mistral_instruct_prompt(turns: list[tuple[str, str]]) -> str:
    """`conv_mistral_instruct.get_prompt()` (LLaMA-2 style, empty system, sep `""`, sep2 `"</s>"`)."""
    prompt = ""
    for i, (_, text) in enumerate(turns):
        if not text:
            continue
        prompt += f"[INST] {text} [/INST]" if i % 2 == 0 else f" {text} </s>"
    return prompt


def tokenizer_image_token(prompt: str, tokenizer) -> list[int]:
    """LLaVA's `tokenizer_image_token`: chunks around `<image>` tokenized separately, `-200` between them."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(tokenizer.bos_token_id)
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(IMAGE_INDEX)
        ids.extend(chunk[offset:])
    return ids


def preprocess(prompt: str, tokenizer, separator: str, legacy: bool = False) -> tuple[list[int], list[int], bool]:
    """LLaVA's `preprocess_v1` (separator `" ASSISTANT: "`) or `preprocess_llama_2` (`"[/INST] "`) for one prompt.

    Returns:
        `(input_ids, labels, mismatch)`; `mismatch` is LLaVA's "tokenization mismatch" (then every label is masked).
    """
    input_ids = tokenizer_image_token(prompt, tokenizer)
    labels = list(input_ids)
    total = sum(1 for t in input_ids if t != tokenizer.unk_token_id)  # LLaVA v1 pads with unk
    position = 1
    labels[:1] = [IGNORE_INDEX]
    for i, round_text in enumerate(prompt.split("</s>")):
        if round_text == "":
            break
        parts = round_text.split(separator)
        if len(parts) != 2:
            break
        instruction = parts[0] + separator
        round_len = len(tokenizer_image_token(round_text, tokenizer))
        instruction_len = len(tokenizer_image_token(instruction, tokenizer)) - 2
        if i != 0 and not legacy:
            round_len -= 1
            instruction_len -= 1
        end = position + instruction_len
        labels[position:end] = [IGNORE_INDEX] * len(labels[position:end])
        position += round_len
    labels[position:] = [IGNORE_INDEX] * len(labels[position:])
    mismatch = position != total
    if mismatch:
        labels = [IGNORE_INDEX] * len(labels)
    return input_ids, labels, mismatch
