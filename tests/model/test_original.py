"""`llava-adapt convert`: original LLaVA / LLaVA-Med checkpoints behave, after conversion, as LLaVA computes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPImageProcessor,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
)
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.model.original import ConversionError, convert_original, is_original_config, load_projector
from tests.model import llava_reference as llava
from tests.model.original_checkpoints import VISION, write_clip_tower, write_original, write_projector_file
from tests.real_tokenizers import slow_llama_tokenizer

pytestmark = pytest.mark.slow

IMAGE_SIZE = (90, 50)  # not square: LLaVA pads it with the CLIP mean colour
QUESTION = "What is shown in this film?"


@pytest.fixture(scope="module")
def tower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip_tower(tmp_path_factory.mktemp("clip") / "clip")


def _image() -> Image.Image:
    image = Image.new("RGB", IMAGE_SIZE, (200, 30, 30))
    image.paste((20, 160, 40), (10, 10, 40, 40))
    return image


def _llava_pixels(tower: Path) -> torch.Tensor:
    """LLaVA's image path: expand2square with the processor's mean colour, then the CLIP processor."""
    processor = CLIPImageProcessor.from_pretrained(tower)
    image = _image()
    side = max(image.size)
    square = Image.new("RGB", (side, side), tuple(int(x * 255) for x in processor.image_mean))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return processor(square, return_tensors="pt")["pixel_values"]


def _llava_logits(checkpoint: Path, family: str, tower: Path, ids: list[int], pixels: torch.Tensor) -> torch.Tensor:
    """The original model's forward as LLaVA computes it: tower hidden state -2 without CLS, the mlp2x_gelu
    projector, image features spliced in at the -200 placeholder, the causal LM."""
    state = load_file(checkpoint / "model.safetensors") if (checkpoint / "model.safetensors").is_file() else (
        torch.load(checkpoint / "pytorch_model.bin", weights_only=True))  # fmt: skip
    config = json.loads((checkpoint / "config.json").read_text())
    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if family == "llama" else (MistralConfig, MistralForCausalLM)
    )
    known = config_cls().to_dict()
    lm = model_cls(config_cls(**{k: v for k, v in config.items() if k in known and k != "model_type"}))
    lm.load_state_dict({k: v for k, v in state.items() if k.startswith(("model.embed", "model.layers", "model.norm",
                                                                          "lm_head"))}, strict=False)  # fmt: skip
    vision = CLIPVisionModel.from_pretrained(tower)
    stored = {k.removeprefix("model.vision_tower.vision_tower."): v for k, v in state.items()
              if k.startswith("model.vision_tower.vision_tower.")}  # fmt: skip
    if stored:
        vision.load_state_dict(stored)
    proj = nn.Sequential(nn.Linear(VISION["hidden_size"], lm.config.hidden_size), nn.GELU(),
                         nn.Linear(lm.config.hidden_size, lm.config.hidden_size))  # fmt: skip
    proj.load_state_dict({k.removeprefix("model.mm_projector."): v for k, v in state.items() if "mm_projector" in k})
    with torch.no_grad():
        features = proj(vision(pixels, output_hidden_states=True).hidden_states[-2][:, 1:])[0]
        at = ids.index(llava.IMAGE_INDEX)
        embed = lm.get_input_embeddings()
        embeds = torch.cat([embed(torch.tensor(ids[:at])), features, embed(torch.tensor(ids[at + 1 :]))])
        return lm(inputs_embeds=embeds[None]).logits[0]


@pytest.mark.parametrize(
    ("family", "store_tower", "weights", "sentencepiece"),
    [("llama", False, "safetensors", True), ("mistral", True, "bin", False)],  # LLaVA-1.5 / LLaVA-Med v1.5 layouts
)
def test_converted_checkpoint_computes_what_llava_computes(
    family: str, store_tower: bool, weights: str, sentencepiece: bool, tower: Path, real_tokenizers: dict[str, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    checkpoint = write_original(
        tmp_path / "orig",
        family,
        real_tokenizers["llama-spm"],
        tower,
        store_tower,
        weights,
        sentencepiece=sentencepiece,
    )
    assert is_original_config(json.loads((checkpoint / "config.json").read_text()))
    out = convert_original(str(checkpoint), tmp_path / "hf")
    model = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert model.config.image_token_index == 32000 and model.get_input_embeddings().weight.shape[0] == 32064
    assert processor.tokenizer.pad_token == "<pad>"

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=prompt, images=[_image()], add_special_tokens=False, return_tensors="pt")
    turns = [("human", f"<image>\n{QUESTION}"), ("gpt", "")]
    llava_prompt = llava.vicuna_v1_prompt(turns) if family == "llama" else llava.mistral_instruct_prompt(turns)
    llava_ids = llava.tokenizer_image_token(llava_prompt, slow_llama_tokenizer())
    n = int((inputs["input_ids"] == 32000).sum())
    assert n == (VISION["image_size"] // VISION["patch_size"]) ** 2
    expanded = [t for i in llava_ids for t in ([32000] * n if i == llava.IMAGE_INDEX else [i])]
    assert inputs["input_ids"][0].tolist() == expanded  # the prompt the original model was trained on
    pixels = _llava_pixels(tower)
    assert torch.allclose(inputs["pixel_values"], pixels, atol=1e-5)  # pad to square with the mean colour
    with torch.no_grad():
        ours = model(**inputs).logits[0, :, :32000]
    theirs = _llava_logits(checkpoint, family, tower, llava_ids, pixels)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_cli_converts_and_refuses_what_it_cannot(
    tower: Path, real_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    checkpoint = write_original(tmp_path / "orig", "llama", real_tokenizers["llama-spm"], tower)
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(checkpoint), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    conversion = json.loads((tmp_path / "hf" / "llava_conversion.json").read_text())
    assert conversion["family"] == "llama" and conversion["chat_template"] == "vicuna_v1"
    again = runner.invoke(app, ["convert", str(checkpoint), "--out", str(tmp_path / "hf")])
    assert again.exit_code == 2 and "not empty" in again.output
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "mm_projector_type": "linear"}))
    failed = runner.invoke(app, ["convert", str(checkpoint), "--out", str(tmp_path / "linear")])
    assert failed.exit_code == 2 and "mm_projector_type 'linear'" in failed.output
    assert "Traceback" not in failed.output and not (tmp_path / "linear").exists()
    with pytest.raises(ConversionError, match="not LLaVA's original format"):
        convert_original(str(tmp_path / "hf"), tmp_path / "again")


def test_released_projector_file_reads_as_llava_hf_projector(tmp_path: Path) -> None:
    path = write_projector_file(tmp_path / "mm_projector.bin")
    weights = load_projector(str(path))
    original = torch.load(path, weights_only=True)
    assert set(weights) == {"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"}
    assert torch.equal(weights["linear_1.weight"], original["model.mm_projector.0.weight"])
    assert torch.equal(weights["linear_2.bias"], original["model.mm_projector.2.bias"])
    assert load_projector(str(tmp_path)).keys() == weights.keys()  # a folder holding mm_projector.bin


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_bin_file_carrying_code_is_refused_in_one_line(tower: Path, real_tokenizers: dict, tmp_path: Path) -> None:
    checkpoint = write_original(tmp_path / "orig", "llama", real_tokenizers["llama-spm"], tower, weights="bin")
    torch.save({"model.embed_tokens.weight": torch.zeros(1), "x": _Payload()}, checkpoint / "pytorch_model.bin")
    result = CliRunner().invoke(app, ["convert", str(checkpoint), "--out", str(tmp_path / "hf")])
    assert result.exit_code != 0 and "holds more than tensors" in result.output
    assert "this must never run" not in result.output and "Traceback" not in result.output
