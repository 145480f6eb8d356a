"""Conversation formats with real tokenizers: LLaVA-1.5's exact masks, and for every family the inference prompt is
the trained prefix, the loss covers only answers and their end token, and stock `AutoProcessor` reproduces it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image
from transformers import AutoProcessor, AutoTokenizer

from llava_adapt.data.records import Conversation
from llava_adapt.model.chat_template import CHAT_FORMATS
from llava_adapt.model.components import from_components
from llava_adapt.model.load import prepare_chat_format
from llava_adapt.train.examples import EMPTY_TURN, IGNORE_INDEX, SPECIAL_TOKEN_IN_TEXT, SampleTokenizer
from llava_adapt.train.formats import TrainingSample, conversation_to_messages
from tests.model import llava_reference as llava
from tests.model.real_components import (
    CLIP_VIT_L_336,
    LLAMA3_8B,
    MISTRAL_7B,
    QWEN25_05B,
    VICUNA_7B,
    write_language_model,
    write_vision_tower,
)
from tests.real_tokenizers import slow_llama_tokenizer

pytestmark = pytest.mark.slow

SMALL_LM = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 2}
SMALL_VISION = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "image_size": 28}
# family -> (language-model config, tokenizer, expected format)
FAMILIES = {
    "vicuna": (VICUNA_7B, "llama-spm", "vicuna_v1"),
    "mistral": (MISTRAL_7B, "llama-spm", "mistral_instruct"),  # Mistral's own vocabulary is not shipped offline
    "qwen2.5": (QWEN25_05B, "qwen2", "chatml"),
    "llama3": (LLAMA3_8B, "llama-bpe", "llama3"),
}

# Real-data shapes: LLaVA-Instruct (image placeholder last, multi-turn), LLaVA-Med, ScienceQA, hard text.
CONVERSATIONS = {
    "one_turn": [("human", "<image>\nWhat is shown in the image?"), ("gpt", "A chest X-ray with a small nodule.")],
    "placeholder_last_multi_turn": [
        ("human", "What color is the bus in the image?\n<image>"), ("gpt", "The bus in the image is white and red."),
        ("human", "What feature can be seen on the back of the bus?"), ("gpt", "An advertisement."),
        ("human", "Is the bus driving down the street or pulled off to the side?"), ("gpt", "Driving down it."),
    ],
    "scienceqa": [("human", "Context: Select the better answer.\nWhich property do these two objects have in common?\n"
                   "Options: (A) hard (B) sticky\n<image>"), ("gpt", "The answer is A.")],
    "unicode": [("human", "<image>\nDescribe — in détail — the “finding” (≈ 3 cm³)?"),
                ("gpt", "Ünïcödé: 肺结节, 10³ 🙂")],
    "answer_starts_with_punctuation": [("human", "<image>\nList them."), ("gpt", ", then; (a) first — ok")],
    "newlines_and_spaces_inside": [("human", "<image>\n  Findings?\n\n"), ("gpt", "Line one.\n\n- item\n- item  ")],
    "answer_with_leading_space": [("human", "<image>\nQ?"), ("gpt", " leading space"), ("human", "again\n"),
                                  ("gpt", "\nleading newline")],
    "assistant_marker_in_text": [("human", "<image>\nWhat does ' ASSISTANT: ' mean here?"), ("gpt", "A role name.")],
    "text_only": [("human", "What is a pneumothorax?"), ("gpt", "Air in the pleural space.")],
}  # fmt: skip


def _messages(turns: list[tuple[str, str]]) -> list[dict]:
    conversation = Conversation(
        id="c", image="x.png", conversations=[{"from": role, "value": text} for role, text in turns]
    )
    return conversation_to_messages(conversation)


@pytest.fixture(scope="module")
def family_models(real_tokenizers: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """family -> (model, processor) built from components: real configs (narrowed) + real tokenizers, random."""
    root = tmp_path_factory.mktemp("families")
    vision = write_vision_tower(root / "clip", CLIP_VIT_L_336, layers=1, **SMALL_VISION)
    built = {}
    for family, (config, tokenizer, _) in FAMILIES.items():
        lm = write_language_model(root / family, config, real_tokenizers[tokenizer], layers=1, **SMALL_LM)
        built[family] = from_components(str(vision), str(lm), random_init=True)
    return built


@pytest.fixture(scope="module")
def vicuna_tokenizer(family_models: dict) -> SampleTokenizer:
    return SampleTokenizer(family_models["vicuna"][1])


def _expand(ids: list[int], labels: list[int], image_id: int, n: int) -> tuple[list[int], list[int]]:
    """LLaVA's single -200 placeholder -> the n image tokens the llava-hf processor writes (no loss on them)."""
    out_ids, out_labels = [], []
    for token, label in zip(ids, labels, strict=True):
        out_ids += [image_id] * n if token == llava.IMAGE_INDEX else [token]
        out_labels += [IGNORE_INDEX] * n if token == llava.IMAGE_INDEX else [label]
    return out_ids, out_labels


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_vicuna_v1_sample_is_llava_preprocess_v1(name: str, vicuna_tokenizer: SampleTokenizer) -> None:
    turns = CONVERSATIONS[name]
    has_image = any("<image>" in text for _, text in turns)
    sample = vicuna_tokenizer(TrainingSample(id=name, image="x.png" if has_image else None, messages=_messages(turns)))
    ids, labels, mismatch = llava.preprocess(
        llava.vicuna_v1_prompt(llava.multimodal_turns(turns)), slow_llama_tokenizer(), " ASSISTANT: "
    )
    expected_ids, expected_labels = _expand(
        ids, labels, vicuna_tokenizer.image_token_id, vicuna_tokenizer.image_tokens
    )
    assert sample.input_ids == expected_ids
    if name == "assistant_marker_in_text":
        # LLaVA splits the round on " ASSISTANT: " written in the question and masks the whole sample; the template's
        # markers still find the answer.
        assert mismatch
        answer = [t for t in sample.labels if t != IGNORE_INDEX]
        assert vicuna_tokenizer.tokenizer.convert_ids_to_tokens(answer)[:2] == ["▁A", "▁role"]
        assert vicuna_tokenizer.tokenizer.decode(answer) == "A role name.</s>"
    else:
        assert not mismatch
        assert sample.labels == expected_labels


def test_vicuna_v1_truncates_where_llava_does(vicuna_tokenizer: SampleTokenizer) -> None:
    turns = CONVERSATIONS["placeholder_last_multi_turn"]
    full = vicuna_tokenizer(TrainingSample(id="t", image="x.png", messages=_messages(turns)))
    limited = SampleTokenizer.__new__(SampleTokenizer)
    limited.__dict__.update(vicuna_tokenizer.__dict__, max_length=len(full.input_ids) - 5)
    cut = limited(TrainingSample(id="t", image="x.png", messages=_messages(turns)))
    # LLaVA truncates to tokenizer_model_max_length after the image features are inserted: the same prefix.
    assert cut.truncated
    assert (cut.input_ids, cut.labels) == (full.input_ids[:-5], full.labels[:-5])


@pytest.mark.parametrize(
    ("turns", "reason", "llava_masks_all"),
    [
        ([("human", "<image>\nWhat is it?"), ("gpt", "")], EMPTY_TURN, True),
        ([("human", "<image>\nWhat is it?"), ("gpt", "   \n")], EMPTY_TURN, False),  # LLaVA trains on the blank
        ([("human", "<image>\nWhat is it?"), ("gpt", "A cat.</s>Then more.")], SPECIAL_TOKEN_IN_TEXT, True),
        # LLaVA reads the written <s> as a BOS in mid-question and trains on it
        ([("human", "<image>\nWhat does <s> mean?"), ("gpt", "Start.")], SPECIAL_TOKEN_IN_TEXT, False),
    ],
)
def test_empty_turns_and_written_special_tokens_are_counted_drops(
    turns, reason, llava_masks_all, vicuna_tokenizer: SampleTokenizer
) -> None:
    _, labels, mismatch = llava.preprocess(
        llava.vicuna_v1_prompt(llava.multimodal_turns(turns)), slow_llama_tokenizer(), " ASSISTANT: "
    )
    assert (mismatch or all(label == IGNORE_INDEX for label in labels)) == llava_masks_all
    assert vicuna_tokenizer(TrainingSample(id="x", image="x.png", messages=_messages(turns))) == reason


def test_unk_written_in_text_is_trained_on_not_dropped_as_padding(vicuna_tokenizer: SampleTokenizer) -> None:
    turns = [("human", "<image>\nWhat is <unk>?"), ("gpt", "An <unk> token.")]
    _, _, mismatch = llava.preprocess(
        llava.vicuna_v1_prompt(llava.multimodal_turns(turns)), slow_llama_tokenizer(), " ASSISTANT: "
    )
    assert mismatch  # LLaVA pads with unk and counts a written <unk> as padding
    sample = vicuna_tokenizer(TrainingSample(id="x", image="x.png", messages=_messages(turns)))
    unk = vicuna_tokenizer.tokenizer.unk_token_id
    assert unk in [t for t in sample.labels if t != IGNORE_INDEX]


def test_fast_tokenizer_matches_llavas_slow_tokenizer_on_its_prompt_text(real_tokenizers: dict[str, Path]) -> None:
    fast = AutoTokenizer.from_pretrained(real_tokenizers["llama-spm"])
    slow = slow_llama_tokenizer()
    chunks = []
    for turns in CONVERSATIONS.values():
        chunks += llava.vicuna_v1_prompt(llava.multimodal_turns(turns)).split("<image>")
        chunks += llava.mistral_instruct_prompt(llava.multimodal_turns(turns)).split("<image>")
    assert len(chunks) > 20
    for chunk in chunks:  # what tokenizer_image_token tokenizes: never starts with a space
        assert fast(chunk).input_ids == slow(chunk).input_ids, chunk
    # The one known difference: text that *starts* with whitespace. LLaVA's chunks never do (the system prompt opens
    # the prompt, "\n" follows the image); inside a whole prompt the fast tokenizer reads spaces as LLaVA's chunks do.
    assert fast(" leading").input_ids != slow(" leading").input_ids


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_gets_its_format_and_inference_prompt_is_the_trained_prefix(family: str, family_models: dict) -> None:
    model, processor = family_models[family]
    assert processor.chat_template == CHAT_FORMATS[FAMILIES[family][2]].template
    tokenizer = SampleTokenizer(processor)
    messages = _messages(CONVERSATIONS["placeholder_last_multi_turn"])
    sample = tokenizer(TrainingSample(id="m", image="x.png", messages=messages))
    end = CHAT_FORMATS[FAMILIES[family][2]].end_of_turn or processor.tokenizer.eos_token
    end_id = processor.tokenizer.convert_tokens_to_ids(end)
    eos = model.generation_config.eos_token_id
    assert end_id in ([eos] if isinstance(eos, int) else eos)  # generation stops where answers end
    answers = [m for m in messages if m["role"] == "assistant"]
    position = 0
    for turn, answer in enumerate(answers):
        prompt = processor.apply_chat_template(messages[: 2 * turn + 1], add_generation_prompt=True, tokenize=False)
        prompt_ids = processor(text=prompt, images=[Image.new("RGB", (40, 30))], add_special_tokens=False)[
            "input_ids"
        ][0]
        prompt_ids = list(prompt_ids)
        assert sample.input_ids[: len(prompt_ids)] == prompt_ids  # token for token what it was trained on
        assert all(label == IGNORE_INDEX for label in sample.labels[position : len(prompt_ids)])
        span = []
        for token, label in zip(sample.input_ids[len(prompt_ids) :], sample.labels[len(prompt_ids) :], strict=True):
            if label == IGNORE_INDEX:
                break
            span.append(token)
        assert span[-1] == end_id  # the answer ends with the end-of-turn token, inside the loss
        assert processor.tokenizer.decode(span[:-1]).strip() == answer["content"][0]["text"].strip()
        position = len(prompt_ids) + len(span)
    assert all(label == IGNORE_INDEX for label in sample.labels[position:])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saved_processor_reproduces_the_prompt_in_stock_autoprocessor(family: str, family_models: dict,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    _, processor = family_models[family]
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    messages = _messages(CONVERSATIONS["one_turn"])[:1]
    image = Image.new("RGB", (50, 20), "white")
    ours = processor(text=processor.apply_chat_template(messages, add_generation_prompt=True), images=[image],
                     add_special_tokens=False)  # fmt: skip
    stock = loaded(text=loaded.apply_chat_template(messages, add_generation_prompt=True), images=[image],
                   add_special_tokens=False)  # fmt: skip
    assert list(ours["input_ids"][0]) == list(stock["input_ids"][0])


def test_mistral_instruct_prompt_is_llava_meds(family_models: dict) -> None:
    _, processor = family_models["mistral"]
    turns = CONVERSATIONS["placeholder_last_multi_turn"][:3]
    ours = processor.apply_chat_template(_messages(turns), add_generation_prompt=True, tokenize=False)
    theirs = llava.mistral_instruct_prompt(llava.multimodal_turns(turns))
    assert ours == "<s> " + theirs.replace("<image>\n", "<image> \n")
    ids = processor.tokenizer(ours, add_special_tokens=False).input_ids
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    expected = llava.tokenizer_image_token(theirs, slow_llama_tokenizer())
    assert ids == [image_id if t == llava.IMAGE_INDEX else t for t in expected]


# llava-hf/llava-1.5-7b-hf's chat template as published: generation markers, but the marked text is the answer and a
# space, with no </s>.
LLAVA_HF_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def test_llava_hf_template_without_end_token_is_replaced(family_models: dict, caplog) -> None:
    model, processor = family_models["vicuna"]
    processor.chat_template = LLAVA_HF_TEMPLATE
    with caplog.at_level(logging.WARNING, logger="llava_adapt"):
        prepare_chat_format(model, processor)
    assert processor.chat_template == CHAT_FORMATS["vicuna_v1"].template
    assert "vicuna_v1" in caplog.text
    qwen_model, qwen_processor = family_models["qwen2.5"]
    prepare_chat_format(qwen_model, qwen_processor)  # a template that closes answers is kept
    assert qwen_processor.chat_template == CHAT_FORMATS["chatml"].template
    prepare_chat_format(qwen_model, qwen_processor, "vicuna_v1")  # the recipe's model.chat_template wins
    assert qwen_processor.chat_template == CHAT_FORMATS["vicuna_v1"].template
    qwen_processor.chat_template = CHAT_FORMATS["chatml"].template
