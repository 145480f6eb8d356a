"""Training throughput on CPU: llava-adapt's `instruct` against TRL's stock vision-language path, `align` with and
without cached vision features, and building a training set of 10k / 100k records, for two model sizes.

    .venv/bin/python benchmarks/train_throughput.py --json benchmark.json      # both sizes, under 10 minutes

Each measurement runs in a fresh process (so its peak RSS is its own), on the same data, model, batch size, sequence
lengths and number of steps; figures are taken over steps 2..N (the first step's one-off costs excluded).

- `instruct` (LoRA r=128 on every linear layer of the language model, projector trained in full, the same learning
  rate for both): llava-adapt's stage (`llava_adapt.stages.instruct.run`, every speed-up at its default) against
  TRL's `SFTTrainer` given a processor and a `messages` + `images` dataset, with TRL's own vision-language collator
  (`DataCollatorForVisionLanguageModeling`: chat template, tokenization and image processing per batch), configured
  as TRL's docs show (`max_length=None`, `assistant_only_loss=True`). Two settings differ from TRL's defaults so that
  both do the same work: fp32 (`bf16=False`; TRL defaults to bf16) and no activation checkpointing (TRL defaults to
  it; llava-adapt's default is off). Both start from the same `align/` model. After training, both models are
  scored the same way (`eval_loss`: the loss per answer token over the first 16 samples, evaluation mode) to show
  the same work was done; a third row trains llava-adapt's stage without cached features (the same batches as the
  first, so the same losses), to show what they contribute.
- `align`: llava-adapt's stage with `cache_vision_features` on and off; the one-off cost of filling the cache is
  reported beside it (`cache_fill_s`).
- `prepare`: building a stage's training set (`llava_adapt.train.dataset.tokenize_samples` over a conversation file:
  tokenizing, the length rule, saving to disk) for 10k and 100k records, each in a fresh process; the peak memory
  is sampled over the process and its tokenizing workers.

Sizes: `tiny` (the built-in tiny model) and `cpu_small` (a 224-px CLIP ViT-B/16 tower and a 4-layer, 1024-wide
LLaMA-shaped language model with LLaMA's 32K vocabulary, random init). `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = {
    # batch size, steps, images (one epoch of cpu_small; several of tiny)
    "tiny": {"batch_size": 8, "steps": 30, "images": 48},
    "cpu_small": {"batch_size": 4, "steps": 8, "images": 32},
}
LORA = {"r": 128, "alpha": 256, "dropout": 0.05}  # LLaVA-1.5's LoRA
LEARNING_RATE = 2e-4
EVAL_SAMPLES = 16  # the first samples of the conversation file, scored after training by both instruct paths
# What the language model's LoRA targets are in TRL's stock run: the same layers llava-adapt's module table picks.
LORA_TARGETS = r"model\.language_model\..*\.(down_proj|gate_proj|k_proj|o_proj|q_proj|up_proj|v_proj)"


def _settings(size: str, **extra: Any) -> dict[str, Any]:
    shape = SIZES[size]
    return {"per_device_train_batch_size": shape["batch_size"], "max_steps": shape["steps"], "logging_steps": 1,
            "save_steps": 10_000, "learning_rate": LEARNING_RATE, **extra}  # fmt: skip


def _model_section(size: str, work: Path) -> dict[str, Any]:
    from training_setup import VIT_B_16_224, LLAMA_4x1024, write_components

    if size == "tiny":
        return {"source": "tiny"}
    return write_components(work / "components", VIT_B_16_224, LLAMA_4x1024)


def _recipe(spec: dict[str, Any], run_dir: Path, cached: bool = True):
    from training_setup import make_recipe

    switch = {"cache_vision_features": cached}
    return make_recipe(
        run_dir, spec["model"], SIZES[spec["size"]]["images"],
        align=_settings(spec["size"], **switch),
        instruct=_settings(spec["size"], **switch, mode="lora", lora=LORA, projector_lr=None),
    )  # fmt: skip


# --- workers: one measurement each, in its own process ---------------------------------------------------------


def _align(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from training_setup import StepClock, context, peak_rss_mb, steady_figures

    import llava_adapt.train.run as train_run
    from llava_adapt.stages import align

    ctx = context(_recipe(spec, Path(spec["run_dir"]), spec["cached"]), "align")
    fill: dict[str, Any] = {}
    build = train_run.build_feature_cache

    def timed_build(*args, **kwargs):  # the cache's one-off cost, apart from the training loop
        start = time.perf_counter()
        cache = build(*args, **kwargs)
        fill["cache_fill_s"] = round(time.perf_counter() - start, 2)
        fill["cache_images"] = len(list(cache.folder.glob("*/*.safetensors")))
        return cache

    train_run.build_feature_cache = timed_build
    clock = StepClock()
    torch.manual_seed(0)
    align.run(ctx)
    log_history = json.loads((ctx.layout.align_dir / "log_history.json").read_text())
    figures = steady_figures(clock, log_history, SIZES[spec["size"]]["batch_size"])
    return {**figures, **fill, "peak_rss_mb": round(peak_rss_mb(), 1)}


def _instruct_llava_adapt(spec: dict[str, Any]) -> dict[str, Any]:
    from training_setup import StepClock, context, eval_loss, peak_rss_mb, steady_figures

    from llava_adapt.model.load import load_trained
    from llava_adapt.stages import instruct

    ctx = context(_recipe(spec, Path(spec["run_dir"]), spec.get("cached", True)), "instruct")
    clock = StepClock()
    instruct.run(ctx)
    log_history = json.loads((ctx.layout.instruct_dir / "log_history.json").read_text())
    figures = steady_figures(clock, log_history, SIZES[spec["size"]]["batch_size"])
    figures.update(peak_rss_mb=round(peak_rss_mb(), 1), vision_feature_cache=ctx.info.get("vision_feature_cache"))
    if spec.get("eval", True):
        model, processor = load_trained(ctx.layout.instruct_dir)  # the adapter merged into its base
        samples = list(instruct.conversation_samples(ctx.layout.instruct_data, ctx.layout.images_dir))
        figures["eval_loss"] = eval_loss(model, processor, samples[:EVAL_SAMPLES])
    return figures


def _same_work(trainer, dataset, samples, processor, n: int = 8) -> dict[str, Any]:
    """Collate the first `n` samples with TRL's collator and tokenize them with llava-adapt's: equal ids and labels?"""
    from llava_adapt.train.examples import SampleTokenizer

    batch = trainer.data_collator([dataset[i] for i in range(n)])
    ours = SampleTokenizer(processor)
    equal = 0
    for i, sample in enumerate(samples[:n]):
        keep = batch["attention_mask"][i].bool()
        theirs_ids, theirs_labels = batch["input_ids"][i][keep].tolist(), batch["labels"][i][keep].tolist()
        mine = ours(sample)
        equal += theirs_ids == mine.input_ids and theirs_labels == mine.labels
    return {"samples_compared": n, "identical_ids_and_labels": equal}


def _instruct_trl_stock(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset, Image, Sequence
    from peft import LoraConfig
    from training_setup import StepClock, context, eval_loss, peak_rss_mb, steady_figures
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from llava_adapt.stages.instruct import conversation_samples

    recipe = _recipe(spec, Path(spec["run_dir"]))
    layout = context(recipe, "instruct").layout
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # as llava-adapt's stage does on a CPU
    model = AutoModelForImageTextToText.from_pretrained(layout.align_dir, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(layout.align_dir)
    samples = list(conversation_samples(layout.instruct_data, layout.images_dir))
    dataset = Dataset.from_list([{"messages": s.messages, "images": [s.image]} for s in samples])
    dataset = dataset.cast_column("images", Sequence(Image()))
    shape = SIZES[spec["size"]]
    args = SFTConfig(
        output_dir=str(Path(spec["run_dir"]) / "trl_stock"),
        max_length=None,  # TRL's docs for vision-language models: no truncation that could cut image tokens
        assistant_only_loss=True,  # the loss on the assistant turns only, as llava-adapt's stage 2
        per_device_train_batch_size=shape["batch_size"], max_steps=shape["steps"], learning_rate=LEARNING_RATE,
        lr_scheduler_type=recipe.instruct.lr_scheduler_type, warmup_steps=recipe.instruct.warmup_ratio,
        weight_decay=recipe.instruct.weight_decay, max_grad_norm=recipe.instruct.max_grad_norm,
        bf16=False, activation_checkpointing=False,  # the same precision and recomputation as llava-adapt's run
        logging_steps=1, save_strategy="no", report_to="none", seed=recipe.seed, data_seed=recipe.seed,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
    )  # fmt: skip
    lora = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules=LORA_TARGETS,
                      modules_to_save=["multi_modal_projector"], task_type="CAUSAL_LM")  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor, peft_config=lora)
    same = _same_work(trainer, dataset, samples, processor)
    clock = StepClock()
    trainer.train()
    figures = steady_figures(clock, trainer.state.log_history, shape["batch_size"])
    rss = round(peak_rss_mb(), 1)
    return {**figures, "eval_loss": eval_loss(trainer.model, processor, samples[:EVAL_SAMPLES]), "peak_rss_mb": rss,
            "same_work": same}  # fmt: skip


def _memory_sampler() -> tuple[threading.Event, dict[str, float]]:
    """Sample the private (anonymous) resident memory of this process and its children every 20 ms."""
    import psutil

    stop, peak = threading.Event(), {"mb": 0.0}
    me = psutil.Process()

    def run() -> None:
        while not stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    info = proc.memory_info()
                    total += info.rss - info.shared
                except psutil.Error:
                    pass
            peak["mb"] = max(peak["mb"], total / 2**20)
            time.sleep(0.02)

    threading.Thread(target=run, daemon=True).start()
    return stop, peak


def _prepare(spec: dict[str, Any]) -> dict[str, Any]:
    from training_setup import context, peak_rss_mb
    from transformers import AutoProcessor

    from llava_adapt.data.jsonl import read_jsonl, write_jsonl
    from llava_adapt.stages.instruct import conversation_samples
    from llava_adapt.train.dataset import tokenize_samples
    from llava_adapt.train.examples import SampleTokenizer

    layout = context(_recipe(spec, Path(spec["run_dir"])), "instruct").layout
    processor = AutoProcessor.from_pretrained(layout.align_dir)
    base = [obj for _, obj in read_jsonl(layout.instruct_data)]
    work = Path(spec["work"])
    records = work / "records.jsonl"
    n = spec["records"]
    write_jsonl(records, ({**base[i % len(base)], "id": f"r{i}"} for i in range(n)))
    tokenizer = SampleTokenizer(processor, 2048)
    stop, peak = _memory_sampler()
    start = time.perf_counter()
    dataset, stats = tokenize_samples(
        lambda: conversation_samples(records, layout.images_dir), tokenizer, 0.05, work / "dataset"
    )
    seconds = time.perf_counter() - start
    stop.set()
    return {"records": n, "kept": stats.kept, "seconds": round(seconds, 2), "records_per_s": round(n / seconds, 1),
            "peak_rss_mb": round(peak["mb"], 1), "main_process_peak_rss_mb": round(peak_rss_mb(), 1)}  # fmt: skip


WORKERS = {"align": _align, "instruct_llava_adapt": _instruct_llava_adapt, "instruct_trl_stock": _instruct_trl_stock,
           "prepare": _prepare}  # fmt: skip


# --- the parent: data, then every measurement in its own process ---------------------------------------------------


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _run_worker(spec: dict[str, Any], log: Path) -> dict[str, Any]:
    out = Path(spec["work"]) / "result.json"
    Path(spec["work"]).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LLAVA_ADAPT_PROGRESS": "0", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip
    load = _load()
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        subprocess.run([sys.executable, __file__, "--worker", json.dumps({**spec, "out": str(out)})],
                       check=True, env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
    result = json.loads(out.read_text())
    return {**result, "wall_s": round(time.perf_counter() - start, 1), "load_before": load, "load_after": _load()}


def _ratio(a: dict, b: dict, key: str = "samples_per_s") -> float:
    return round(a[key] / b[key], 2)


def measure_size(size: str, work: Path, log: Path, prepare_records: list[int]) -> dict[str, Any]:
    """Every measurement of one model size."""
    from training_setup import copy_data, make_recipe, write_data

    model = _model_section(size, work)
    data_run = work / "data_run"
    write_data(make_recipe(data_run, {"source": "tiny"}, SIZES[size]["images"]))
    runs = {name: work / name for name in ("uncached", "cached")}
    for run_dir in runs.values():
        copy_data(data_run, run_dir)
    base = {"size": size, "model": model}
    print(f"[{size}] align without cached features ...", flush=True)
    uncached = _run_worker({**base, "kind": "align", "cached": False, "run_dir": str(runs["uncached"]),
                            "work": str(work / "w_align_uncached")}, log)  # fmt: skip
    print(f"[{size}] align with cached features ...", flush=True)
    cached = _run_worker({**base, "kind": "align", "cached": True, "run_dir": str(runs["cached"]),
                          "work": str(work / "w_align_cached")}, log)  # fmt: skip
    print(f"[{size}] instruct: TRL stock ...", flush=True)
    trl = _run_worker({**base, "kind": "instruct_trl_stock", "run_dir": str(runs["cached"]),
                       "work": str(work / "w_trl")}, log)  # fmt: skip
    print(f"[{size}] instruct: llava-adapt ...", flush=True)
    ours = _run_worker({**base, "kind": "instruct_llava_adapt", "run_dir": str(runs["cached"]),
                        "work": str(work / "w_instruct")}, log)  # fmt: skip
    print(f"[{size}] instruct: llava-adapt without cached features ...", flush=True)
    ours_computed = _run_worker({**base, "kind": "instruct_llava_adapt", "cached": False, "eval": False,
                                 "run_dir": str(runs["uncached"]), "work": str(work / "w_instruct_uncached")},
                                log)  # fmt: skip
    prepared = {}
    for n in prepare_records:
        print(f"[{size}] prepare {n} records ...", flush=True)
        prepared[n] = _run_worker({**base, "kind": "prepare", "records": n, "run_dir": str(runs["cached"]),
                                   "work": str(work / f"w_prepare_{n}")}, log)  # fmt: skip
    small, large = min(prepared), max(prepared)
    return {
        "instruct": {
            "llava_adapt": ours,
            "trl_stock": trl,
            "speedup": _ratio(ours, trl),
            "llava_adapt_computed_features": ours_computed,
            "speedup_computed_features": _ratio(ours_computed, trl),
        },  # fmt: skip
        "align": {"cached": cached, "uncached": uncached, "speedup": _ratio(cached, uncached)},
        "prepare": {
            "records": large,
            "records_per_s": prepared[large]["records_per_s"],
            f"peak_rss_mb_{small // 1000}k": prepared[small]["peak_rss_mb"],
            f"peak_rss_mb_{large // 1000}k": prepared[large]["peak_rss_mb"],
            "runs": list(prepared.values()),
        },
    }


def _table(results: dict[str, Any]) -> str:
    rows = [f"{'size':<10}{'measurement':<40}{'samples/s':>10}{'tokens/s':>10}{'peak RSS MB':>12}"
            f"{'final loss':>11}{'eval loss':>10}"]  # fmt: skip
    for size, r in results["sizes"].items():
        for name, fig in (("instruct llava-adapt", r["instruct"]["llava_adapt"]),
                          ("instruct llava-adapt, computed features", r["instruct"]["llava_adapt_computed_features"]),
                          ("instruct TRL stock", r["instruct"]["trl_stock"]),
                          ("align cached features", r["align"]["cached"]),
                          ("align computed features", r["align"]["uncached"])):  # fmt: skip
            evaluated = f"{fig['eval_loss']:>10.3f}" if "eval_loss" in fig else f"{'':>10}"
            rows.append(f"{size:<10}{name:<40}{fig['samples_per_s']:>10.2f}{fig['tokens_per_s']:>10.0f}"
                        f"{fig['peak_rss_mb']:>12.0f}{fig['final_loss']:>11.3f}{evaluated}")  # fmt: skip
        rows.append(f"{size:<10}instruct speed-up {r['instruct']['speedup']}x, align speed-up {r['align']['speedup']}x"
                    f" (cache fill {r['align']['cached']['cache_fill_s']} s for {r['align']['cached']['cache_images']}"
                    " images)")  # fmt: skip
        p = r["prepare"]
        peaks = ", ".join(f"{k} {v}" for k, v in p.items() if k.startswith("peak_rss_mb_"))
        rows.append(f"{size:<10}prepare {p['records']} records: {p['records_per_s']} records/s; {peaks}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--sizes", default="tiny,cpu_small", help="comma-separated: tiny, cpu_small (default both)")
    parser.add_argument("--prepare-records", default="10000,100000", help="record counts of `prepare` (default "
                        "10000,100000)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        spec = json.loads(options.worker)
        Path(spec["out"]).write_text(json.dumps(WORKERS[spec["kind"]](spec)))
        return
    import torch
    import transformers
    import trl

    start = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "load_at_start": _load(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },  # fmt: skip
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="llava-adapt-bench-") as tmp:
        work = options.work_dir or Path(tmp)
        log = work / "workers.log"
        work.mkdir(parents=True, exist_ok=True)
        records = [int(n) for n in options.prepare_records.split(",")]
        for size in options.sizes.split(","):
            results["sizes"][size] = measure_size(size, work / size, log, records)
    results["machine"]["load_at_end"] = _load()
    results["wall_s"] = round(time.perf_counter() - start, 1)
    print(_table(results))
    print(f"wall time {results['wall_s']} s; load average {results['machine']['load_at_start']} at start, "
          f"{results['machine']['load_at_end']} at end")  # fmt: skip
    if options.json:
        flat = {size: r for size, r in results["sizes"].items()}
        options.json.write_text(json.dumps({**flat, "machine": results["machine"], "wall_s": results["wall_s"]},
                                           indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
