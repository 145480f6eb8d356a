"""Records and steps: the step count as transformers' Trainer makes it, record files counted, and the teacher's
requests, tokens and cost."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import Trainer, TrainingArguments

from llava_adapt.data.records import CaptionRecord
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.plan.records import RecordCount, conversation_records, training_steps
from llava_adapt.plan.teacher import plan_teacher
from llava_adapt.prompt_folder import load_prompt_type
from llava_adapt.recipe.loader import load_recipe
from llava_adapt.registry import registry
from llava_adapt.run.layout import RunLayout
from llava_adapt.train.config import InstructConfig


class _Scalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x=None):
        return {"loss": (self.weight * x).sum()}


@pytest.mark.parametrize(
    "records, batch, accumulation, epochs", [(37, 4, 3, 2.5), (1000, 16, 1, 1.0), (999, 8, 4, 3.0), (5, 16, 1, 2.0)]
)
def test_steps_are_the_trainers(tmp_path: Path, records: int, batch: int, accumulation: int, epochs: float):
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
        num_train_epochs=epochs, use_cpu=True, report_to="none", remove_unused_columns=False,
    )  # fmt: skip
    trainer = Trainer(model=_Scalar(), args=args, train_dataset=[{"x": torch.ones(1)}] * records)
    trainer_steps = trainer.set_initial_training_values(args, trainer.get_train_dataloader())[-1]
    settings = InstructConfig(
        per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, num_train_epochs=epochs
    )
    assert training_steps(records, settings, world_size=1) == trainer_steps


def test_steps_formula_with_several_processes_and_max_steps():
    settings = InstructConfig(per_device_train_batch_size=4, gradient_accumulation_steps=4, num_train_epochs=3)
    assert training_steps(60_000, settings, world_size=8) == 3 * math.ceil(60_000 / 128)  # LLaVA-Med's stage 2
    assert training_steps(None, settings, 8) is None
    assert training_steps(None, settings.model_copy(update={"max_steps": 50}), 8) == 50


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_instruct_file_is_counted(tmp_path: Path, suffix: str):
    rows = [{"id": str(n), "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
            for n in range(7)]  # fmt: skip
    path = tmp_path / f"conversations{suffix}"
    text = json.dumps(rows) if suffix == ".json" else "\n".join(json.dumps(r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    recipe = load_recipe("general", overrides=["stages=[prepare,align,instruct]", f"data.instruct_file={path}"]).recipe
    count = conversation_records(recipe, RunLayout(tmp_path / "run"), set(), RecordCount(None, ""), 0)
    assert (count.count, count.exact) == (7, True)
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    recipe = recipe.model_copy(
        update={"data": recipe.data.model_copy(update={"instruct_file": str(tmp_path / "broken.json")})}
    )
    assert conversation_records(recipe, RunLayout(tmp_path / "run"), set(), RecordCount(None, ""), 0).count is None


def test_teacher_tokens_and_cost(tmp_path: Path):
    domain = registry.get("biomed")
    prompt = load_prompt_type(domain.prompts_dir, "conversation")
    config = GenerateConfig(backend="openai", model="gpt-4o", prompt_types=["conversation"], samples_per_record=2)
    plan = plan_teacher(domain, config, captions=500)
    fixed = len(prompt.system_message) + sum(len(s.context) + len(s.response) for s in prompt.examples)
    user = sum(len(s.context) for s in prompt.examples) / len(prompt.examples)
    assert plan.requests == 1000 and plan.requests_per_1000_captions == 2000
    assert plan.input_tokens_per_request == math.ceil((fixed + user) / 4)
    answer = math.ceil(sum(len(s.response) for s in prompt.examples) / len(prompt.examples) / 4)
    assert plan.output_tokens_per_request == min(answer, config.max_tokens)
    dollars = (plan.input_tokens * 2.50 + plan.output_tokens * 10.00) / 1e6  # gpt-4o list price per 1M tokens
    assert plan.cost_usd == pytest.approx(dollars)
    batch = plan_teacher(domain, config.model_copy(update={"batch_api": True}), captions=500)
    assert batch.cost_usd == pytest.approx(dollars / 2)
    assert plan_teacher(domain, config.model_copy(update={"model": "my-model"}), captions=500).cost_usd is None
    offline = plan_teacher(domain, config.model_copy(update={"backend": "offline"}), captions=500)
    assert (offline.requests, offline.cost_usd, offline.input_tokens) == (1000, 0.0, 0)


def test_teacher_measures_the_run_s_captions(tmp_path: Path):
    domain = registry.get("biomed")
    captions = tmp_path / "captions.jsonl"
    record = CaptionRecord("a", "a.png", "x" * 4000, {"modality": "CT"})
    captions.write_text(json.dumps(record.to_dict()) + "\n", encoding="utf-8")
    config = GenerateConfig(prompt_types=["conversation"])
    measured = plan_teacher(domain, config, captions=1, captions_file=captions)
    estimated = plan_teacher(domain, config, captions=1)
    assert measured.measured_on == "the run's captions"
    assert measured.input_tokens_per_request > estimated.input_tokens_per_request + 900  # 4,000 caption characters
