"""Fixtures of the publishing tests: a finished tiny run directory and a fake Hub on 127.0.0.1.

The run is built once per session (tiny LLaVA from `llava_adapt.model.tiny`, a LoRA adapter with the projector in
`modules_to_save`, weights perturbed so the adapter changes the logits) and copied for each test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from huggingface_hub import constants
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText

from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.manifest import COMPLETE, Manifest
from tests.hub.fake_hub import FakeHub
from tests.worked_metrics import worked_metrics_json

TOKEN = "hf_TestS3cretTokenValue0123456789"
LM_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# The metrics.json files the evaluate stage writes for the biomed recipe's benchmarks, from the real metric functions
# on worked items (`tests.worked_metrics`): vqa_rad with the untrained model's scores, slake without.
METRICS = {
    "vqa_rad": worked_metrics_json("biomed", "vqa_rad"),
    "slake": worked_metrics_json("biomed", "slake", baseline=False),
}
COUNTS = {
    "prepare": (40, {"corrupt or unreadable image": 2, "image file missing": 1}),
    "generate": (38, {"answer leaks the caption": 2}),
    "align": (40, {}),
    "instruct": (38, {"answer truncated": 1}),
    "evaluate": (2, {}),
}


def recipe_dict(**sections: Any) -> dict[str, Any]:
    """A valid biomed recipe (as `recipe.yaml` stores it), with `sections` replacing top-level keys."""
    data: dict[str, Any] = {
        "domain": "biomed",
        "stages": ["prepare", "generate", "align", "instruct", "evaluate"],
        "model": {"source": "llava", "name_or_path": "llava-hf/llava-1.5-7b-hf"},
        "data": {"source": "figure_captions", "root": "/data/pmc-15m"},
        "generate": {"backend": "openai", "model": "gpt-4o"},
        "instruct": {"lora": {"r": 4, "alpha": 8}},
        "evaluate": {"benchmarks": ["vqa_rad", "slake"]},
        "publish": {"repo_id": "someone/llava-med-tiny", "license": "apache-2.0"},
    }
    data.update(sections)
    return Recipe.model_validate(data).model_dump(mode="json")


def write_recipe(run_dir: Path, **sections: Any) -> None:
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_dict(**sections), sort_keys=False), encoding="utf-8")


def write_manifest(run_dir: Path, stages: dict[str, str] | None = None) -> None:
    """A manifest whose stages have the given statuses (default: all complete, with `COUNTS`)."""
    manifest = Manifest(run_dir / "manifest.json")
    manifest.set_run_info(recipe="recipes/biomed.yaml", preset=None, overrides=[], domain="biomed")
    for name, status in (stages or dict.fromkeys(COUNTS, COMPLETE)).items():
        kept, skipped = COUNTS[name]
        manifest.start_stage(name, "hash-" + name, resume=False)
        info = {"requests": 40, "prompt_tokens": 12000} if name == "generate" else None
        manifest.end_stage(name, status, 1.0, kept=kept, skipped=skipped, info=info)


@pytest.fixture(scope="session")
def run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run directory (do not modify: use `run_dir`). Its base model lives next to it in `base/`."""
    root = tmp_path_factory.mktemp("tiny_run")
    base_dir = root / "base"
    model, processor = build_tiny_model(TinyModelConfig())
    model.save_pretrained(base_dir)
    processor.save_pretrained(base_dir)
    base = AutoModelForImageTextToText.from_pretrained(base_dir)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=LM_TARGETS, modules_to_save=["multi_modal_projector"], task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: LoRA B is zero at init, which would make the merge a no-op
        for param in peft_model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    run = root / "run"
    instruct = run / "instruct"
    peft_model.save_pretrained(instruct, save_embedding_layers=False)
    processor.save_pretrained(instruct)
    (instruct / "training_args.bin").write_bytes(b"not for upload")
    (instruct / "checkpoint-2").mkdir()
    (instruct / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"old checkpoint")
    write_recipe(run)
    write_manifest(run)
    for benchmark, metrics in METRICS.items():
        (run / "eval" / benchmark).mkdir(parents=True)
        (run / "eval" / benchmark / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        (run / "eval" / benchmark / "predictions.jsonl").write_text("{}\n", encoding="utf-8")
    return run


@pytest.fixture
def run_dir(run_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished run directory."""
    return Path(shutil.copytree(run_template, tmp_path / "run"))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hub; `HF_ENDPOINT` points at it and `HF_TOKEN` holds the only token it accepts."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with FakeHub(TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server
