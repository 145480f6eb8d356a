"""Loss masks, the image-token expansion, the length rule, the drop limit and the collator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.load import prepare_chat_format
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.train.collator import LlavaCollator
from llava_adapt.train.dataset import IMAGE_MISSING, TrainingDataError, tokenize_samples
from llava_adapt.train.examples import ANSWER_CUT, IGNORE_INDEX, IMAGE_CUT, NO_ANSWER, SampleTokenizer, fit_length
from llava_adapt.train.formats import TrainingSample

MESSAGES = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the shape?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
    {"role": "user", "content": [{"type": "text", "text": "And the shape?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "a circle"}]},
]


def _loss_text(processor, tokenized) -> str:
    return processor.tokenizer.decode([t for t in tokenized.labels if t != IGNORE_INDEX])


def test_chat_mask_is_exactly_the_assistant_answers(tiny) -> None:
    _, processor = tiny
    tokenized = SampleTokenizer(processor)(TrainingSample("s", "x.png", messages=MESSAGES))
    assert _loss_text(processor, tokenized) == " red</s> a circle</s>"
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    image_positions = [i for i, t in enumerate(tokenized.input_ids) if t == image_id]
    assert len(image_positions) == 16
    assert all(tokenized.labels[i] == IGNORE_INDEX for i in image_positions)
    assert tokenized.labels[0] == IGNORE_INDEX  # bos


def test_tokenization_without_the_image_matches_the_processor(tiny) -> None:
    _, processor = tiny
    ids, mask = SampleTokenizer(processor).chat(MESSAGES)
    with_image = [{**MESSAGES[0], "content": [{"type": "image", "image": Image.new("RGB", (80, 60))},
                                             MESSAGES[0]["content"][1]]}] + MESSAGES[1:]  # fmt: skip
    reference = processor.apply_chat_template(
        with_image, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert ids == list(reference["input_ids"][0])
    assert mask == list(reference["assistant_masks"][0])


def test_plain_mask_is_the_caption_and_eos(tiny) -> None:
    _, processor = tiny
    tokenized = SampleTokenizer(processor)(TrainingSample("s", "x.png", caption="A red circle."))
    assert _loss_text(processor, tokenized) == "A red circle.</s>"
    assert (
        tokenized.input_ids[:17]
        == [processor.tokenizer.bos_token_id] + [processor.tokenizer.convert_tokens_to_ids("<image>")] * 16
    )


def test_length_rule() -> None:
    image = 9
    ids = [1, image, image, image, 5, 6, 7, 8]
    mask = [0, 0, 0, 0, 0, 1, 1, 1]
    assert fit_length(ids, mask, image, None).labels == [-100] * 5 + [6, 7, 8]
    kept = fit_length(ids, mask, image, 6)
    assert kept.input_ids == ids[:6] and kept.truncated and kept.labels[-1] == 6
    assert fit_length(ids, mask, image, 3) == IMAGE_CUT  # the cut falls inside the image run
    assert fit_length(ids, mask, image, 5) == ANSWER_CUT  # nothing of the answer would be left
    assert fit_length(ids, [0] * 8, image, None) == NO_ANSWER


def test_drops_are_counted_and_too_many_stop_the_stage(tiny, tmp_path: Path) -> None:
    _, processor = tiny
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(image)
    long_answer = [MESSAGES[0], {"role": "assistant", "content": [{"type": "text", "text": "red " * 40}]}]
    samples = [TrainingSample(str(i), str(image), messages=MESSAGES) for i in range(8)]
    samples += [TrainingSample("long", str(image), messages=long_answer)]
    samples += [TrainingSample("gone", str(tmp_path / "missing.png"), messages=MESSAGES)]
    length = len(SampleTokenizer(processor)(samples[0]).input_ids)
    tokenizer = SampleTokenizer(processor, max_length=length)
    dataset, stats = tokenize_samples(samples, tokenizer, max_dropped_fraction=0.2)
    assert len(dataset) == stats.kept == 9
    assert stats.dropped == {IMAGE_MISSING: 1}
    assert stats.truncated == 1  # the long answer is cut, its beginning still carries loss
    assert set(dataset.column_names) == {"input_ids", "labels", "image_path", "length"}
    with pytest.raises(TrainingDataError, match=r"10 of 10 samples would be dropped \(image tokens cut") as info:
        tokenize_samples(samples, SampleTokenizer(processor, max_length=12), max_dropped_fraction=0.2)
    assert info.value.stats.dropped == {IMAGE_CUT: 9, IMAGE_MISSING: 1}


@pytest.mark.slow
def test_tokenizing_in_two_processes_gives_the_same_rows_and_counts(tiny, tmp_path: Path) -> None:
    _, processor = tiny
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(image)
    captions = [TrainingSample(f"c{i}", str(image), caption="A red circle. " * (i % 4 + 1)) for i in range(6)]
    chats = [TrainingSample(f"m{i}", str(image), messages=MESSAGES[: 2 + 2 * (i % 2)]) for i in range(6)]
    gone = [TrainingSample("gone", str(tmp_path / "missing.png"), messages=MESSAGES)]
    samples = captions + gone + chats
    tokenizer = SampleTokenizer(processor)
    one, one_stats = tokenize_samples(samples, tokenizer, 0.2, tmp_path / "one", num_proc=1)
    two, two_stats = tokenize_samples(lambda: iter(samples), tokenizer, 0.2, tmp_path / "two", num_proc=2)
    assert one.to_list() == two.to_list()
    assert one_stats == two_stats and two_stats.kept == 12 and two_stats.dropped == {IMAGE_MISSING: 1}
    expected = [tokenizer(s) for s in captions + chats]
    assert [row["input_ids"] for row in two] == [t.input_ids for t in expected]
    assert [row["labels"] for row in two] == [t.labels for t in expected]
    assert not list(tmp_path.glob(".tokenize.*"))  # working files removed


def test_collator_pads_right_and_masks_padding(tiny, tmp_path: Path) -> None:
    _, processor = tiny
    image = tmp_path / "a.png"
    Image.new("RGB", (70, 64), "blue").save(image)
    rows = [
        {"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "image_path": str(image)},
        {"input_ids": [1, 2], "labels": [-100, 2], "image_path": str(image)},
    ]
    batch = LlavaCollator(processor)(rows)
    pad = processor.tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[1, 2, 3], [1, 2, pad]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [-100, 2, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["pixel_values"].shape == (2, 3, 64, 64)
    assert batch["pixel_values"].dtype == torch.float32


def test_llava_next_image_tokens_follow_each_image_size(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(architecture="llava_next"))
    prepare_chat_format(model, processor)
    tokenizer = SampleTokenizer(processor)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]  # fmt: skip
    counts = set()
    for size in [(64, 64), (130, 60), (50, 140)]:
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        Image.new("RGB", size, "red").save(path)
        sample = tokenizer(TrainingSample(id=path.stem, image=str(path), messages=messages))
        with Image.open(path) as image:
            reference = processor(text=processor.apply_chat_template(messages), images=[image],
                                  add_special_tokens=False)["input_ids"][0]  # fmt: skip
        assert sample.input_ids == list(reference)  # the processor's own expansion, without decoding pixels
        counts.add(sample.input_ids.count(tokenizer.image_token_id))
    assert len(counts) == 3  # any-resolution tiling: the count depends on the image's shape
