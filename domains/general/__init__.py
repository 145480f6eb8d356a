"""The `general` domain: everyday images, the way LLaVA built its instruction data from COCO.

Sources:

- `coco`: COCO captions with the objects' boxes (`captions_*.json` + `instances_*.json`), one record per image;
  the teacher sees all the captions and the boxes, as LLaVA's GPT-4 did when it wrote LLaVA-Instruct (`coco.py`);
- `llava_pretrain`: LLaVA's stage-1 data, LCS-558K (`blip_laion_cc_sbu_558k.json`, its `_meta.json`, or JSONL of
  the same records), one caption per image (`llava_pretrain.py`);
- `shapes`: synthetic coloured shapes on noisy backgrounds (captions, labels, and the shape's box as allow-listed
  context), drawn offline for the `tiny` preset and the tests.

Benchmarks:

- `shapes_color`: held-out images with the closed question "What color is the shape?" (choices: the colours;
  metric: accuracy, chance 0.25);
- `llava_bench_coco` and `llava_bench_wild`: LLaVA-Bench (COCO: 90 questions on 30 COCO val2014 images; In-the-Wild:
  60 questions on 24 images), free-form answers scored offline by token recall/F1 against GPT-4's reference
  (`chat_metrics.py`) and, with `evaluate.judge`, by LLaVA's GPT-4-judged relative score (`llava_bench.py`,
  `llava_bench_judge.py`).

The offline generator writes LLaVA-style conversations from the shapes' labels; the prompts in `prompts/` serve a
GPT-4-class teacher, with the context `build_context` lays out.
"""

from __future__ import annotations

from pathlib import Path

from llava_adapt.plugin import CLOSED_ACCURACY_SPECS, Benchmark, Domain, Source, closed_accuracy

from . import coco, llava_bench, llava_pretrain
from .chat_metrics import CHAT_SPECS, chat_metrics
from .llava_bench_judge import JUDGE
from .questions import CLOSED_COLOR_PROMPT, build_context, load_benchmark, offline_generator
from .shapes import ShapesArgs, count_source, load_source

# LLaVA's `model_vqa.py` answered the LLaVA-Bench questions with up to 1024 new tokens. Detailed descriptions and
# complex reasoning run to a few hundred tokens; an answer cut short is judged as incomplete, and generation stops at
# the end of the answer anyway. `evaluate.max_new_tokens_by_benchmark` overrides it.
LLAVA_BENCH_MAX_NEW_TOKENS = 1024


class HeldOutShapesArgs(ShapesArgs):
    """The benchmark's images: fewer, and drawn from another seed stream than the training images."""

    num_images: int = 100
    seed_offset: int = 1_000_000


domain = Domain(
    name="general",
    description="Everyday images (LLaVA's COCO recipe); offline: synthetic coloured shapes",
    sources={
        "coco": Source(
            description="COCO captions + object boxes (captions_/instances_{split}{year}.json), one record per image",
            load=coco.load,
            args=coco.CocoArgs,
        ),
        "llava_pretrain": Source(
            description="LLaVA's stage-1 captions: LCS-558K blip_laion_cc_sbu_558k.json (or _meta.json, JSONL)",
            load=llava_pretrain.load,
            args=llava_pretrain.LlavaPretrainArgs,
        ),
        "shapes": Source(
            description="synthetic coloured circles/squares/triangles on noisy backgrounds, drawn offline",
            load=load_source,
            args=ShapesArgs,
            count=count_source,
        ),
    },
    benchmarks={
        "shapes_color": Benchmark(
            description="held-out shapes, closed question 'What color is the shape?' (accuracy; chance 0.25)",
            load=load_benchmark,
            metrics=closed_accuracy,
            metric_specs=CLOSED_ACCURACY_SPECS,
            args=HeldOutShapesArgs,
            prompt=CLOSED_COLOR_PROMPT,
        ),
        "llava_bench_coco": Benchmark(
            description="LLaVA-Bench (COCO), qa90 JSONL: GPT-4-judged relative score; token recall/F1 offline",
            load=llava_bench.load_coco,
            metrics=chat_metrics,
            metric_specs=CHAT_SPECS,
            args=llava_bench.LlavaBenchCocoArgs,
            judge=JUDGE,
            max_new_tokens=LLAVA_BENCH_MAX_NEW_TOKENS,
        ),
        "llava_bench_wild": Benchmark(
            description="LLaVA-Bench (In-the-Wild), Hub JSONL: GPT-4-judged relative score; token recall/F1 offline",
            load=llava_bench.load_wild,
            metrics=chat_metrics,
            metric_specs=CHAT_SPECS,
            args=llava_bench.LlavaBenchWildArgs,
            judge=JUDGE,
            max_new_tokens=LLAVA_BENCH_MAX_NEW_TOKENS,
        ),
    },
    prompts_dir=Path(__file__).parent / "prompts",
    build_context=build_context,
    offline_generator=offline_generator,
    context_fields=("captions", "boxes"),
    prompt_context_fields={"conversation": ("captions",)},  # LLaVA's conversation prompt: captions only, no boxes
    version="2",  # 2: the conversation prompt sees captions only
)
