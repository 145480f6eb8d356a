"""The tiny model's text pretraining: the language model learns the run's words before stage 1, nothing else moves,
and a run builds its pretrained base once (again only when its text or settings change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llava_adapt.errors import InputError
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.model.tiny_tokenizer import build_tiny_tokenizer
from llava_adapt.stages import align
from llava_adapt.stages.model_source import PRETRAINING_FILE, run_texts, start_model
from llava_adapt.train.text_pretraining import pretrain_language_model
from tests.train.stage_helpers import context, make_recipe, prepare_data

TEXTS = ["A CT scan of the abdomen shows a lesion on the left.", "An MRI of the brain appears normal."] * 8


@pytest.mark.slow
def test_pretraining_teaches_the_language_model_and_leaves_vision_and_projector_alone() -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0, corpus=TEXTS)
    untouched = {name: p.detach().clone() for name, p in model.named_parameters() if "language_model" not in name
                 and "lm_head" not in name}  # fmt: skip
    losses = pretrain_language_model(model, processor.tokenizer, TEXTS, steps=40, seed=0)
    assert len(losses) == 40 and losses[-1] < 0.25 * losses[0]
    backend = processor.tokenizer.backend_tokenizer
    assert backend.truncation is None and backend.padding is None  # image prompts later must not be cut
    for name, parameter in model.named_parameters():
        if name in untouched:
            assert torch.equal(parameter, untouched[name]), name
    again, processor_again = build_tiny_model(TinyModelConfig(), seed=0, corpus=TEXTS)
    assert pretrain_language_model(again, processor_again.tokenizer, TEXTS, steps=40, seed=0) == losses


def test_a_corpus_gives_its_words_short_encodings() -> None:
    built_in, learned = build_tiny_tokenizer(), build_tiny_tokenizer(corpus=["periosteal reaction"] * 50)
    assert len(learned.tokenize(" periosteal reaction")) < len(built_in.tokenize(" periosteal reaction"))
    assert learned.tokenize("USER: ASSISTANT:") == built_in.tokenize("USER: ASSISTANT:")  # the roles stay whole


@pytest.mark.slow
def test_a_run_builds_its_pretrained_tiny_base_once_and_stage_1_starts_from_it(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    recipe = make_recipe(tmp_path / "run", model={"tiny": {"text_pretraining_steps": 30}})
    prepare_data(recipe)
    ctx = context(recipe, "align")
    texts = run_texts(ctx)
    assert texts and not any("<image>" in text for text in texts)
    config = start_model(ctx)
    base = ctx.layout.tiny_base_dir
    assert config.source == "llava" and config.name_or_path == str(base.resolve())
    summary = json.loads((base / PRETRAINING_FILE).read_text())
    assert summary["steps"] == 30 and summary["last_loss"] < summary["first_loss"]
    assert ctx.info["tiny_text_pretraining"]["texts"] == len(texts)
    built = (base / "model.safetensors").stat().st_mtime_ns
    start_model(context(recipe, "instruct"))
    assert (base / "model.safetensors").stat().st_mtime_ns == built  # built once
    align.run(ctx)  # stage 1 trains the projector on top of the pretrained language model, which stays frozen
    pretrained = load_file(base / "model.safetensors")
    aligned = load_file(ctx.layout.align_dir / "model.safetensors")
    lm_keys = [key for key in pretrained if "language_model" in key or "lm_head" in key]
    assert lm_keys and all(torch.equal(pretrained[key], aligned[key]) for key in lm_keys)
    assert any(not torch.equal(pretrained[k], aligned[k]) for k in pretrained if "multi_modal_projector" in k)
    changed = make_recipe(tmp_path / "run", model={"tiny": {"text_pretraining_steps": 31}})
    start_model(context(changed, "align"))
    assert json.loads((base / PRETRAINING_FILE).read_text())["steps"] == 31  # rebuilt for new settings


def test_a_run_without_text_is_told_what_to_run_first(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    recipe = make_recipe(tmp_path / "run", model={"tiny": {"text_pretraining_steps": 30}})  # no prepare yet
    with pytest.raises(InputError, match="run prepare and generate first, or set model.tiny.text_pretraining_steps=0"):
        start_model(context(recipe, "align"))
    assert not (tmp_path / "run" / "tiny_base").exists()
