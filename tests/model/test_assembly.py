"""The three ways to a LLaVA model: tiny, components, llava-hf checkpoint (all through real folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from llava_adapt.model.chat_template import CHAT_FORMATS, has_generation_markers
from llava_adapt.model.components import ComponentError, from_components
from llava_adapt.model.config import ModelConfig, TinyModelConfig
from llava_adapt.model.load import load_model, load_pretrained
from llava_adapt.model.tiny import build_tiny_model
from tests.model.helpers import save_language_model, save_vision_tower

LLAVA_CHAT_TEMPLATE = CHAT_FORMATS["vicuna_v1"].template

CONVERSATION = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what color"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
]


def _inputs(processor, size: int = 40) -> dict:
    text = processor.apply_chat_template(CONVERSATION, tokenize=False)
    return processor(text=text, images=[Image.new("RGB", (size, size), "red")], add_special_tokens=False,
                     return_tensors="pt")  # fmt: skip


def test_tiny_model_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=3)
    again, _ = build_tiny_model(TinyModelConfig(), seed=3)
    other, _ = build_tiny_model(TinyModelConfig(), seed=4)
    state, state_again = model.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state_again[k]) for k in state)
    assert not torch.equal(state["model.multi_modal_projector.linear_1.weight"],
                           other.state_dict()["model.multi_modal_projector.linear_1.weight"])  # fmt: skip
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path)
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert loaded_processor.chat_template == LLAVA_CHAT_TEMPLATE
    inputs = _inputs(processor)
    assert torch.equal(inputs["input_ids"], _inputs(loaded_processor)["input_ids"])
    assert (inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<image>")).sum() == 16
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_from_components_keeps_pretrained_weights_and_adds_tokens(tmp_path: Path, kind: str) -> None:
    lm_dir = save_language_model(tmp_path / "lm")
    vision_dir = save_vision_tower(tmp_path / kind, kind)
    model, processor = from_components(str(vision_dir), str(lm_dir), vision_feature_layer=-1)
    lm_weights = load_file(lm_dir / "model.safetensors")
    vision_weights = load_file(vision_dir / "model.safetensors")
    assert torch.equal(model.model.language_model.layers[0].mlp.up_proj.weight,
                       lm_weights["model.layers.0.mlp.up_proj.weight"])  # fmt: skip
    key = next(k for k in vision_weights if k.endswith("encoder.layers.0.mlp.fc1.weight"))
    assert torch.equal(model.model.vision_tower.get_parameter(key), vision_weights[key])
    assert not any(p.is_meta for p in model.parameters())
    tokenizer = processor.tokenizer
    assert tokenizer.pad_token == "<pad>"
    assert model.config.image_token_index == tokenizer.convert_tokens_to_ids("<image>")
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    assert has_generation_markers(processor.chat_template)
    expected_strategy = "default" if kind == "clip" else "full"
    assert model.config.vision_feature_select_strategy == expected_strategy
    inputs = _inputs(processor)
    assert (inputs["input_ids"] == model.config.image_token_index).sum() == 16
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape
    out = tmp_path / "assembled"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    # the llava-hf path: the assembled folder is now an existing LLaVA checkpoint
    loaded, loaded_processor = load_model(ModelConfig(source="llava", name_or_path=str(out)))
    with torch.no_grad():
        assert torch.allclose(loaded(**_inputs(loaded_processor)).logits, logits)


def test_from_components_rejects_a_non_vision_encoder(tmp_path: Path) -> None:
    lm_dir = save_language_model(tmp_path / "lm")
    with pytest.raises(ComponentError, match="supported vision encoders"):
        from_components(str(lm_dir), str(lm_dir))


def test_llava_checkpoint_without_generation_markers_gets_the_training_template(tmp_path: Path) -> None:
    model, processor = build_tiny_model(TinyModelConfig(), seed=0)
    processor.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    _, loaded = load_pretrained(str(tmp_path))
    assert loaded.chat_template == LLAVA_CHAT_TEMPLATE
