"""What the training benchmarks share: model shapes written as config-only folders (built with `model.init: random`),
synthetic data through the `general` domain's own stages, recipes over a run directory, and a clock on the
trainer's steps.

Nothing is downloaded: the vision tower and language model are `config.json` folders (the language model with the
tiny model's offline tokenizer, whose ids are all the benchmarks need), the images are drawn by the `shapes`
source, and the conversations come from the domain's offline generator, cycling LLaVA's three prompt types
(conversation, detailed description, complex reasoning) so sample lengths vary as in LLaVA's instruction data.
"""

from __future__ import annotations

import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from trl import SFTTrainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the published configs live in tests/

from llava_adapt.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
from llava_adapt.data.records import CaptionRecord, Conversation  # noqa: E402
from llava_adapt.domains.general import domain  # noqa: E402
from llava_adapt.model.tiny_tokenizer import build_tiny_tokenizer  # noqa: E402
from llava_adapt.recipe.schema import Recipe  # noqa: E402
from llava_adapt.run.layout import RunLayout  # noqa: E402
from llava_adapt.stages import prepare  # noqa: E402
from llava_adapt.stages.context import StageContext  # noqa: E402
from llava_adapt.train.collator import LlavaCollator  # noqa: E402
from llava_adapt.train.examples import SampleTokenizer  # noqa: E402
from llava_adapt.train.formats import TrainingSample  # noqa: E402
from tests.model.real_components import (  # noqa: E402
    CLIP_VIT_L_336,
    VICUNA_7B,
    write_language_model,
    write_vision_tower,
)

# A 224-px CLIP ViT-B/16 (openai/clip-vit-base-patch16, vision half): 196 image tokens, 86M parameters.
VIT_B_16_224 = {**CLIP_VIT_L_336, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                "num_attention_heads": 12, "image_size": 224, "patch_size": 16, "projection_dim": 512}  # fmt: skip
LLAMA_7B = VICUNA_7B  # Vicuna-7B v1.5 (the LLaMA-2-7B shape): LLaVA-1.5-7B's language model
# The same proportions at CPU size: 4 layers, 1024 wide (LLaMA's 2.6875 MLP ratio), LLaMA's 32K vocabulary.
LLAMA_4x1024 = {**LLAMA_7B, "hidden_size": 1024, "intermediate_size": 2752, "num_hidden_layers": 4,
                "num_attention_heads": 16, "num_key_value_heads": 16}  # fmt: skip

PROMPT_TYPES = ("conversation", "detailed_description", "complex_reasoning")


def write_components(folder: Path, vision: dict, language: dict) -> dict[str, str]:
    """Config-only component folders; returns the recipe's `model:` section that builds them (random init)."""
    tokenizer = folder / "tokenizer"
    build_tiny_tokenizer().save_pretrained(tokenizer)
    vision_dir = write_vision_tower(folder / "vision_tower", vision)
    language_dir = write_language_model(folder / "language_model", language, tokenizer)
    return {"source": "components", "vision_tower": str(vision_dir), "language_model": str(language_dir),
            "init": "random", "dtype": "float32"}  # fmt: skip


def make_recipe(run_dir: Path, model: dict[str, Any], n_images: int, **sections: Any) -> Recipe:
    """A `general`-domain recipe over `run_dir` with `model`; `sections` (e.g. `align={...}`) update the defaults."""
    data = {
        "domain": "general",
        "run_dir": str(run_dir),
        "stages": ["prepare", "generate", "align", "instruct"],
        "model": model,
        "data": {"source": "shapes", "root": str(run_dir), "args": {"num_images": n_images, "image_size": 336}},
        "generate": {"backend": "offline"},
    }
    data.update(sections)
    return Recipe.model_validate(data)


def context(recipe: Recipe, stage: str) -> StageContext:
    """The context a stage runs with."""
    return StageContext(name=stage, recipe=recipe, domain=domain, layout=RunLayout(Path(recipe.run_dir)))


def write_data(recipe: Recipe) -> None:
    """Run `prepare` (the `shapes` source draws the images), then write offline conversations as `generate` would."""
    Path(recipe.run_dir).mkdir(parents=True, exist_ok=True)
    prepare.run(context(recipe, "prepare"))
    layout = RunLayout(Path(recipe.run_dir))
    rows = []
    for i, (_, obj) in enumerate(read_jsonl(layout.captions)):
        record = CaptionRecord.from_dict(obj)
        turns = domain.offline_generator(record, PROMPT_TYPES[i % len(PROMPT_TYPES)], random.Random(record.id))
        rows.append(Conversation(id=record.id, image=record.image, conversations=turns).to_dict())
    write_jsonl(layout.instruct_data, rows)


def copy_data(source: Path, run_dir: Path) -> None:
    """Give `run_dir` the data of the run directory `source` (captions, conversations, images)."""
    shutil.copytree(source / "data", run_dir / "data")


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepClock:
    """Times every optimisation step of any `SFTTrainer` (llava-adapt's subclass and the stock one alike), by
    wrapping `training_step`; installed once per process."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        original = SFTTrainer.training_step
        clock = self

        def training_step(trainer, *args, **kwargs):
            clock.starts.append(time.perf_counter())
            loss = original(trainer, *args, **kwargs)
            loss.item()  # the step's work is done (on a GPU: synchronised)
            clock.ends.append(time.perf_counter())
            return loss

        SFTTrainer.training_step = training_step

    def steady_seconds(self) -> float:
        """From the start of the second step to the end of the last: the steady state, data loading included,
        without the first step's one-off costs."""
        return self.ends[-1] - self.starts[1]


def steady_figures(clock: StepClock, log_history: list[dict], batch_size: int) -> dict[str, Any]:
    """Samples/s and tokens/s over steps 2..N, the loss curve and the final loss, from a training's log (logged
    every step: `num_tokens` is TRL's running count of attended tokens)."""
    steps = [entry for entry in log_history if "loss" in entry]
    seconds = clock.steady_seconds()
    tokens = steps[-1]["num_tokens"] - steps[0]["num_tokens"]
    return {
        "steps": len(steps),
        "batch_size": batch_size,
        "samples_per_s": round((len(steps) - 1) * batch_size / seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "seconds_per_step": round(seconds / (len(steps) - 1), 3),
        "final_loss": round(steps[-1]["loss"], 4),
        "loss_curve": [round(entry["loss"], 4) for entry in steps],
    }


@torch.no_grad()
def eval_loss(model, processor, samples: list[TrainingSample], batch_size: int = 8) -> float:
    """The loss per labelled token over `samples`, in evaluation mode (no dropout), the images computed by the
    vision tower: the same measure for any trained model, whatever its batches were during training."""
    tokenizer, collate = SampleTokenizer(processor), LlavaCollator(processor)
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(samples), batch_size):
        rows = []
        for sample in samples[start : start + batch_size]:
            tokenized = tokenizer(sample)
            rows.append({"input_ids": tokenized.input_ids, "labels": tokenized.labels, "image_path": sample.image})
        batch = collate(rows)
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        total += model(**batch).loss.item() * tokens
        count += tokens
    return round(total / count, 4)
