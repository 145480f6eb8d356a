"""A tiny LLaVA-NeXT (any-resolution tiles, image tokens by image size) through `recipe run` end to end, then
loaded with the stock classes and exported merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftConfig, PeftModel
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaNextForConditionalGeneration

# A hang guard, not a timing check: a whole recipe on a busy 2-core machine can take 10x its idle time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


def test_tiny_llava_next_runs_the_curriculum_and_loads_with_stock_classes(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("llava-adapt"))
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLAVA_ADAPT_PROGRESS": "0"}
    overrides = ["model.tiny.architecture=llava_next", "align.max_steps=30", "instruct.max_steps=60",
                 "data.args.num_images=200", "model.tiny.text_pretraining_steps=50"]  # fmt: skip
    subprocess.run([cli, "recipe", "run", "general", "--preset", "tiny", "--run-dir", str(run_dir), *overrides],
                   env=env, check=True, capture_output=True)  # fmt: skip
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert all(stage["status"] == "complete" for stage in stages.values())
    # the projector trains in align, image_newline with it (LLaVA-NeXT's row separator)
    assert stages["align"]["info"]["trainable_parameters"] == {"projector": 24832 + 128}
    metrics = json.loads((run_dir / "eval" / "shapes_color" / "metrics.json").read_text())
    assert metrics["num_items"] > 0

    base = PeftConfig.from_pretrained(run_dir / "instruct").base_model_name_or_path
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base), run_dir / "instruct")
    assert isinstance(model.get_base_model(), LlavaNextForConditionalGeneration)
    processor = AutoProcessor.from_pretrained(run_dir / "instruct")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is it?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=prompt, images=[Image.new("RGB", (120, 50), "blue")], add_special_tokens=False,
                       return_tensors="pt")  # fmt: skip
    assert "image_sizes" in inputs
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]

    export = subprocess.run([cli, "export", str(run_dir), "--out", str(tmp_path / "merged"), "--merged"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert export.returncode == 0, export.stderr
    merged = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged")
    assert isinstance(merged, LlavaNextForConditionalGeneration)
