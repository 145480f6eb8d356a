"""The speed-ups leave the result the same: cached vs computed vision features, the LM head on labelled positions
only, padding-free batches; the feature cache is keyed by image content and settings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.modules import set_trainable
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.stages import align, instruct
from llava_adapt.train.collator import LlavaCollator
from llava_adapt.train.examples import SampleTokenizer
from llava_adapt.train.features import build_feature_cache, cached_vision_tower, image_digest, unsupported_reason
from llava_adapt.train.formats import TrainingSample
from llava_adapt.train.loss import labelled_loss
from tests.train.stage_helpers import context, make_recipe, prepare_data

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the shape?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "The shape is red."}]},
]


def _losses(run_dir: Path, stage: str) -> list[float]:
    history = json.loads((run_dir / stage / "log_history.json").read_text())
    return [entry["loss"] for entry in history if "loss" in entry]


def test_cached_and_computed_vision_features_give_the_same_losses(tmp_path: Path) -> None:
    runs = {}
    for cached in (True, False):
        run_dir = tmp_path / f"cached-{cached}"
        run_dir.mkdir()
        switch = {"cache_vision_features": cached, "save_steps": 100}
        recipe = make_recipe(run_dir, align=switch, instruct=switch)
        prepare_data(recipe)
        contexts = {stage: context(recipe, stage) for stage in ("align", "instruct")}
        align.run(contexts["align"])
        instruct.run(contexts["instruct"])
        runs[cached] = run_dir, contexts
    run_dir, contexts = runs[True]
    folder = Path(contexts["align"].info["vision_feature_cache"])
    assert folder.parent == run_dir / "cache" / "vision_features"
    assert contexts["instruct"].info["vision_feature_cache"] == str(folder)  # the frozen tower: align's features
    assert len(list(folder.glob("*/*.safetensors"))) == 12  # one file per image
    assert "vision_feature_cache" not in runs[False][1]["align"].info
    for stage in ("align", "instruct"):
        cached, computed = _losses(runs[True][0], stage), _losses(runs[False][0], stage)
        assert len(cached) == 4
        assert cached == pytest.approx(computed, rel=1e-5)


def _images(folder: Path) -> list[str]:
    paths = []
    for i, color in enumerate(["red", "blue", "red"]):
        path = folder / f"{i}.png"
        Image.new("RGB", (64, 48), color).save(path)
        paths.append(str(path))
    return paths


def test_feature_cache_is_keyed_by_content_and_settings(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    set_trainable(model, ["projector"])
    assert unsupported_reason(model) is None
    paths = _images(tmp_path)
    cache = build_feature_cache(model, processor, paths + paths, tmp_path / "cache")
    assert len(list(cache.folder.glob("*/*.safetensors"))) == 2  # 0.png and 2.png have the same content
    assert cache.load(paths[0]).shape == (1, 17, 64)  # the penultimate layer: CLS + 16 patches, hidden 64
    with torch.no_grad():
        pixels = processor.image_processor([Image.open(paths[1])], return_tensors="pt")["pixel_values"]
        expected = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][0]
    torch.testing.assert_close(cache.load(paths[1])[0], expected)
    assert cache.path(image_digest(paths[0])) == cache.path(image_digest(paths[2]))

    processor.image_processor.image_mean = [0.0, 0.0, 0.0]  # other preprocessing: another folder
    other = build_feature_cache(model, processor, paths, tmp_path / "cache")
    assert other.folder != cache.folder
    model.model.vision_tower.requires_grad_(True)
    assert unsupported_reason(model) == "the vision tower trains"
    tiled, _ = build_tiny_model(TinyModelConfig(architecture="llava_next"))
    assert "llava_next computes features per image tile" in unsupported_reason(tiled)


def test_cached_vision_tower_feeds_the_stock_forward_and_restores_it(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    paths = _images(tmp_path)
    samples = [TrainingSample(str(i), path, messages=MESSAGES) for i, path in enumerate(paths)]
    tokenizer = SampleTokenizer(processor)
    rows = [{**tokenizer(s).__dict__, "image_path": s.image} for s in samples]
    cache = build_feature_cache(model, processor, paths, tmp_path / "cache")
    computed = model(**LlavaCollator(processor)(rows)).loss
    state = model.state_dict()
    with cached_vision_tower(model, cache):
        cached = model(**LlavaCollator(processor, features=cache)(rows)).loss
    torch.testing.assert_close(cached, computed)
    assert "forward" not in vars(model.model.vision_tower)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def _batch(processor, lengths: list[int], tmp_path: Path) -> list[dict]:
    image = _images(tmp_path)[0]
    tokenizer = SampleTokenizer(processor)
    rows = []
    for n in lengths:
        answer = [{"role": "assistant", "content": [{"type": "text", "text": "red " * n}]}]
        tokenized = tokenizer(TrainingSample(str(n), image, messages=MESSAGES[:1] + answer))
        rows.append({"input_ids": tokenized.input_ids, "labels": tokenized.labels, "image_path": image})
    return rows


def test_labelled_logits_give_the_model_loss_and_gradients(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    batch = LlavaCollator(processor)(_batch(processor, [1, 5, 9], tmp_path))
    full = model(**batch).loss
    full.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    result = labelled_loss(model, batch)
    result.loss.backward()
    torch.testing.assert_close(result.loss, full)
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == expected.keys() and "lm_head.weight" in grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-6)
    assert result.tokens == (batch["labels"][:, 1:] != -100).sum()
    assert 0 <= result.entropy / result.tokens <= math.log(model.config.text_config.vocab_size)


def test_padding_free_batch_gives_the_padded_loss(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    rows = _batch(processor, [1, 5, 9], tmp_path)
    padded = labelled_loss(model, LlavaCollator(processor, pad_to_multiple_of=8)(rows))
    packed_batch = LlavaCollator(processor, padding_free=True)(rows)
    assert packed_batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    assert "attention_mask" not in packed_batch
    # sdpa here (transformers builds the block-diagonal mask from the restarting position_ids); FlashAttention on GPUs
    packed = labelled_loss(model, packed_batch)
    torch.testing.assert_close(packed.loss, padded.loss)
    assert packed.tokens == padded.tokens
