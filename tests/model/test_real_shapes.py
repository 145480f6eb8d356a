"""Real model shapes from configs alone: CLIP ViT-L/14-336 with Vicuna-7B, Mistral-7B and Qwen2.5-0.5B at one
language-model layer (two vision layers: LLaVA reads the penultimate), full widths, real tokenizers, random weights;
one `align` and one LoRA `instruct` step each, with the stages' own freezing and LoRA targeting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from peft import get_peft_model
from PIL import Image

from llava_adapt.model.chat_template import CHAT_FORMATS
from llava_adapt.model.config import ModelConfig
from llava_adapt.model.load import load_model
from llava_adapt.model.modules import get_part, set_trainable
from llava_adapt.stages.instruct import lora_config
from llava_adapt.train.collator import LlavaCollator
from llava_adapt.train.config import LoraSettings
from llava_adapt.train.examples import SampleTokenizer
from llava_adapt.train.formats import TrainingSample
from llava_adapt.train.run import trainable_parameters
from tests.model.real_components import (
    CLIP_VIT_L_336,
    MISTRAL_7B,
    QWEN25_05B,
    VICUNA_7B,
    write_language_model,
    write_vision_tower,
)

pytestmark = pytest.mark.slow

SHAPES = {
    "vicuna-7b": (VICUNA_7B, "llama-spm", "vicuna_v1"),
    "mistral-7b": (MISTRAL_7B, "llama-spm", "mistral_instruct"),
    "qwen2.5-0.5b": (QWEN25_05B, "qwen2", "chatml"),
}


def _step(model, batch: dict) -> float:
    """One optimisation step over the trainable parameters; returns the loss."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_real_shapes_train_one_align_and_one_instruct_step(
    shape: str, real_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    lm_config, tokenizer, chat_format = SHAPES[shape]
    vision = write_vision_tower(tmp_path / "clip", CLIP_VIT_L_336, layers=2)
    lm = write_language_model(tmp_path / "lm", lm_config, real_tokenizers[tokenizer], layers=1)
    config = ModelConfig(source="components", vision_tower=str(vision), language_model=str(lm), init="random",
                         dtype="float32", chat_template=None)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        model, processor = load_model(config, seed=0)
    text = model.config.text_config
    assert (text.hidden_size, text.num_attention_heads, text.num_key_value_heads) == (
        lm_config["hidden_size"], lm_config["num_attention_heads"], lm_config["num_key_value_heads"]
    )  # fmt: skip
    assert model.get_input_embeddings().weight.shape[0] % 64 == 0
    assert model.get_input_embeddings().weight.shape[0] >= lm_config["vocab_size"]
    if lm_config["tie_word_embeddings"]:
        assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert processor.chat_template == CHAT_FORMATS[chat_format].template

    samples = SampleTokenizer(processor, max_length=2048)
    assert samples.image_tokens == 576  # (336 / 14)**2, CLS dropped
    image = tmp_path / "film.png"
    Image.new("RGB", (400, 300), "gray").save(image)
    collate = LlavaCollator(processor)

    # align: the projector only, loss on the caption
    set_trainable(model, ["projector"])
    assert set(trainable_parameters(model)) == {"projector"}
    caption = samples(TrainingSample(id="a", image=str(image), caption="A frontal chest radiograph."))
    batch = collate([{"input_ids": caption.input_ids, "labels": caption.labels, "image_path": str(image)}])
    assert int((batch["input_ids"] == samples.image_token_id).sum()) == 576
    assert math.isfinite(_step(model, batch))

    # instruct (LoRA): adapters on the language model's linear layers, projector in full, vision tower frozen
    set_trainable(model, [])
    peft_model = get_peft_model(model, lora_config(model, LoraSettings(r=8, alpha=16), train_vision_tower=False))
    counts = trainable_parameters(peft_model)
    assert set(counts) == {"language_model", "projector"}
    hidden, inner = lm_config["hidden_size"], lm_config["intermediate_size"]
    kv = lm_config["num_key_value_heads"] * hidden // lm_config["num_attention_heads"]
    assert counts["projector"] == 1024 * hidden + hidden + hidden * hidden + hidden
    # r * (in + out) for q, k, v, o, gate, up, down, in the one layer
    assert counts["language_model"] == 8 * (4 * hidden + 2 * (hidden + kv) + 3 * (hidden + inner))
    assert not any("lora_" in name for name, _ in get_part(peft_model, "vision_tower").named_parameters())
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there an effusion?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "No, the costophrenic angles are sharp."}]},
    ]
    chat = samples(TrainingSample(id="c", image=str(image), messages=messages))
    batch = collate([{"input_ids": chat.input_ids, "labels": chat.labels, "image_path": str(image)}])
    assert int((batch["input_ids"] == samples.image_token_id).sum()) == 576
    assert math.isfinite(_step(peft_model, batch))
