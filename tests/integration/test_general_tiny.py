"""`llava-adapt recipe run general --preset tiny`, end to end, offline, on the CPU: killed during `instruct`,
resumed from its checkpoint, and judged by what the model learned and by which weights moved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from peft import PeftConfig, PeftModel
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from llava_adapt.model.modules import part_of

RECIPE = "general"
# A hang guard, not a timing check: a whole recipe on a busy 2-core machine can take 10x its idle time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


def _command(run_dir: Path) -> list[str]:
    cli = str(Path(sys.executable).with_name("llava-adapt"))
    return [cli, "recipe", "run", RECIPE, "--preset", "tiny", "--run-dir", str(run_dir)]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LLAVA_ADAPT_PROGRESS": "0"}


def _kill_during_instruct(run_dir: Path) -> None:
    process = subprocess.Popen(_command(run_dir), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = run_dir / "instruct" / "checkpoints"
    deadline = time.monotonic() + 1500  # a hang guard, not a timing check: a busy machine can be 10x slower
    while not any(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "the run ended before instruct wrote a checkpoint"
        assert time.monotonic() < deadline, "no instruct checkpoint in time"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _stages(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["stages"]


def test_tiny_general_recipe_learns_resumes_and_loads(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _kill_during_instruct(run_dir)
    assert _stages(run_dir)["instruct"]["status"] != "complete"
    subprocess.run(_command(run_dir), env=_env(), check=True, capture_output=True)
    stages = _stages(run_dir)
    assert all(s["status"] == "complete" for s in stages.values())
    assert stages["align"]["attempts"] == 1  # not redone
    assert stages["instruct"]["info"]["resumed_from"].startswith("checkpoint-")

    metrics = json.loads((run_dir / "eval" / "shapes_color" / "metrics.json").read_text())
    assert metrics["metrics"]["chance"] <= 0.5
    assert metrics["metrics"]["accuracy"] >= 0.9
    assert metrics["baseline"]["accuracy"] < 0.5
    assert len((run_dir / "eval" / "shapes_color" / "predictions.jsonl").read_text().splitlines()) == 100

    # stage 1 moved the projector and nothing else of the model it started from: the tiny model whose language
    # model learned the run's text (tiny_base/)
    fresh = AutoModelForImageTextToText.from_pretrained(run_dir / "tiny_base")
    before = fresh.state_dict()
    pretraining = stages["align"]["info"]["tiny_text_pretraining"]
    assert pretraining["steps"] == 200 and pretraining["last_loss"] < pretraining["first_loss"]
    aligned = AutoModelForImageTextToText.from_pretrained(run_dir / "align")
    after_align = {k: v.clone() for k, v in aligned.state_dict().items()}
    assert {part_of(fresh, k) for k in before if not torch.equal(before[k], after_align[k])} == {"projector"}

    # stage 2: LoRA in the language model only, projector and lm_head in full, nothing of the vision tower
    adapter = load_file(run_dir / "instruct" / "adapter_model.safetensors")
    parts = {
        part_of(fresh, k.removeprefix("base_model.model.").replace(".modules_to_save.default", "")) for k in adapter
    }
    assert parts == {"language_model", "projector", "lm_head"}
    assert all("lora_" in k for k in adapter if ".language_model." in k)

    # the README one-liners: stock classes, offline, answer a held-out question
    config = PeftConfig.from_pretrained(run_dir / "instruct")
    base = AutoModelForImageTextToText.from_pretrained(config.base_model_name_or_path)
    model = PeftModel.from_pretrained(base, run_dir / "instruct").merge_and_unload()
    merged = model.state_dict()
    changed = {part_of(fresh, k) for k in after_align if not torch.equal(after_align[k], merged[k])}
    assert changed == {"projector", "language_model", "lm_head"}
    processor = AutoProcessor.from_pretrained(run_dir / "instruct")
    row = json.loads((run_dir / "eval" / "shapes_color" / "predictions.jsonl").read_text().splitlines()[0])
    prompt = json.loads((run_dir / "eval" / "shapes_color" / "metrics.json").read_text())["prompt_example"]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = Image.open(run_dir / "eval" / "shapes_color" / "images" / f"{row['id']}.png")
    inputs = processor(text=text, images=[image], add_special_tokens=False, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    answer = processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert answer == row["prediction"]

    # a second run finds everything done
    attempts = {name: s["attempts"] for name, s in stages.items()}
    subprocess.run(_command(run_dir), env=_env(), check=True, capture_output=True)
    assert {name: s["attempts"] for name, s in _stages(run_dir).items()} == attempts
