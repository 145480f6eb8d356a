"""`export_merged`: the merged folder loads with stock transformers and answers exactly like base + adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import PeftModel
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.export import export_merged


def make_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (80, 72, 3), dtype=np.uint8))


def logits(model, processor) -> torch.Tensor:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the shape?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=make_image(), text=prompt, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def base_plus_adapter(run_dir: Path):
    instruct = run_dir / "instruct"
    base_path = json.loads((instruct / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = AutoModelForImageTextToText.from_pretrained(base_path)
    return base, PeftModel.from_pretrained(base, instruct).eval(), AutoProcessor.from_pretrained(instruct)


@pytest.mark.slow
def test_merged_model_reloads_with_stock_classes_and_matches_base_plus_adapter(run_dir: Path, tmp_path: Path) -> None:
    out = export_merged(run_dir, tmp_path / "merged")
    assert {"config.json", "model.safetensors", "processor_config.json", "chat_template.jinja"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    merged_processor = AutoProcessor.from_pretrained(out)
    assert type(merged).__name__ == "LlavaForConditionalGeneration"

    base, adapted, processor = base_plus_adapter(run_dir)
    expected = logits(adapted, processor)
    torch.testing.assert_close(logits(merged, merged_processor), expected, atol=1e-5, rtol=1e-5)
    # The adapter (LoRA + projector) matters: without it the logits differ, so the check above can fail.
    adapted.unload()
    assert (logits(base.eval(), processor) - expected).abs().max() > 1e-3


def test_full_model_folder_is_exported_as_is(run_dir: Path, tmp_path: Path) -> None:
    merged = export_merged(run_dir, tmp_path / "merged")
    shutil.rmtree(run_dir / "instruct")
    shutil.copytree(merged, run_dir / "instruct")  # what `instruct.mode: full` leaves
    again = export_merged(run_dir, tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (merged / "model.safetensors").read_bytes()


def test_moved_run_directory_still_finds_its_base(run_dir: Path, tmp_path: Path) -> None:
    config_path = run_dir / "instruct" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    shutil.copytree(config["base_model_name_or_path"], run_dir / "align")
    config["base_model_name_or_path"] = "/somewhere/else/run/align"  # where align/ was before the move
    config_path.write_text(json.dumps(config))
    assert (export_merged(run_dir, tmp_path / "merged") / "model.safetensors").is_file()


def test_missing_base_is_a_clear_error_and_leaves_nothing(run_dir: Path, tmp_path: Path) -> None:
    config_path = run_dir / "instruct" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    config_path.write_text(json.dumps(config))
    with pytest.raises(PublishError, match="is not a model folder"):
        export_merged(run_dir, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_merged_folder_also_has_the_transformers_4_processor_files(run_dir: Path, tmp_path: Path) -> None:
    out = export_merged(run_dir, tmp_path / "merged")
    processor = AutoProcessor.from_pretrained(run_dir / "instruct")
    legacy = json.loads((out / "preprocessor_config.json").read_text())
    assert legacy["image_processor_type"] == "CLIPImageProcessor"  # a class name transformers 4.x knows
    assert legacy == json.loads((out / "processor_config.json").read_text())["image_processor"]
    assert json.loads((out / "chat_template.json").read_text()) == {"chat_template": processor.chat_template}
    # The legacy chat template is the one read when the transformers 5 file is absent.
    (out / "chat_template.jinja").unlink()
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] != "TokenizersBackend"  # a name transformers 4.x does not know
    assert not isinstance(tokenizer_config.get("extra_special_tokens"), list)
    reloaded = AutoProcessor.from_pretrained(out)
    assert reloaded.chat_template == processor.chat_template
    assert reloaded.image_processor.to_dict() == processor.image_processor.to_dict()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a lesion?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    expected = processor(images=make_image(), text=prompt, return_tensors="pt")
    encoded = reloaded(images=make_image(), text=prompt, return_tensors="pt")
    assert torch.equal(encoded["input_ids"], expected["input_ids"])
    assert torch.equal(encoded["pixel_values"], expected["pixel_values"])
