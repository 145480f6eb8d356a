"""Training throughput at LLaVA-1.5-7B's shape on one CUDA GPU, with and without llava-adapt's speed-ups.

    python benchmarks/gpu_throughput.py --json gpu.json            # on a GPU machine (about 20 minutes on one H100)
    python benchmarks/gpu_throughput.py --dry-run                  # the same code path at toy size, on a CPU

The model is built from configs alone (`model.init: random`, bf16): CLIP ViT-L/14-336 (576 image tokens) and a
LLaMA-7B-shaped language model (Vicuna-7B v1.5's config), saved once and loaded by every measurement. Data: the
`general` domain's synthetic images (336 px) and offline conversations of LLaVA's three prompt types. Each
configuration runs in a fresh process through llava-adapt's own stage for `--steps` steps and reports, over steps
2..N: tokens/s per GPU (attended tokens), samples/s, model FLOPs utilisation and peak GPU memory.

Configurations: `align` (projector), `instruct_lora` (LoRA r=128, alpha 256 on every linear layer of the language
model, LLaVA-1.5's `finetune_lora.sh`) and `instruct_full` (projector + language model), each with the speed-ups
at their defaults (`on`: cached vision features, padding-free batches under FlashAttention-2 when flash-attn is
installed, padding to a multiple of 8, Liger's kernels when liger-kernel is installed; TRL's fused LM head either
way) and `off` (all of them off, SDPA attention). All use bf16 and activation checkpointing, as LLaVA's scripts.

MFU counts the language model's training FLOPs per attended token (PaLM's formula: 2N forward, 2N backward through
the activations, 2N' for the weight gradients of the N' trainable parameters, 12·L·h·s for attention) against the
GPU's dense bf16 peak (`--peak-tflops`, else looked up by device name). The vision tower and projector are left out
(under 5 % of the model's FLOPs at this shape), so a configuration that skips the tower is not credited for it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = ("align_on", "align_off", "instruct_lora_on", "instruct_lora_off", "instruct_full_on", "instruct_full_off")
OFF = {"cache_vision_features": False, "labelled_logits_only": False, "pad_to_multiple_of": None,
       "padding_free": False, "liger_kernel": False}  # fmt: skip
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}  # dense bf16
BATCH = {"align": 32, "instruct_lora": 16, "instruct_full": 16}  # LLaVA-1.5's per-device batch sizes (8 GPUs)
# --dry-run: the same shapes' kinds at toy size (576 image tokens kept), for a CPU
DRY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
DRY_LANGUAGE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                "num_key_value_heads": 2, "vocab_size": 1024}  # fmt: skip


def _settings(config: str, steps: int, batch_size: int, dry: bool) -> tuple[str, dict[str, Any]]:
    stage = "align" if config.startswith("align") else "instruct"
    settings: dict[str, Any] = {"per_device_train_batch_size": batch_size, "max_steps": steps, "logging_steps": 1,
                                "save_steps": 10_000, "activation_checkpointing": True,
                                "precision": "fp32" if dry else "bf16"}  # fmt: skip
    if config.endswith("_off"):
        settings.update(OFF)
    if stage == "instruct":
        settings.update({"mode": "full" if "full" in config else "lora", "projector_lr": None,
                         "learning_rate": 2e-5 if "full" in config else 2e-4})  # fmt: skip
    return stage, settings


def training_flops_per_token(model, trainable: int, seq_len: float) -> float:
    """The language model's training FLOPs per token (see the module docstring)."""
    from llava_adapt.model.modules import get_part

    text = model.config.text_config
    language = sum(p.numel() for p in get_part(model, "language_model").parameters())
    language -= model.get_input_embeddings().weight.numel()  # a lookup, not a product
    head = get_part(model, "lm_head").weight.numel()
    return 4 * (language + head) + 2 * trainable + 12 * text.num_hidden_layers * text.hidden_size * seq_len


def run_config(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration through llava-adapt's stage; returns its figures."""
    import torch
    from training_setup import StepClock, context, make_recipe, peak_rss_mb, steady_figures
    from transformers import AutoConfig, AutoModelForImageTextToText

    from llava_adapt.model.load import attention_implementation
    from llava_adapt.stages import align, instruct

    config, dry = spec["config"], spec["dry_run"]
    stage, settings = _settings(config, spec["steps"], spec["batch_size"], dry)
    model = {"source": "llava", "name_or_path": spec["base"], "dtype": "float32" if dry else "bfloat16"}
    if config.endswith("_off"):
        model["attn_implementation"] = "sdpa"
    recipe = make_recipe(Path(spec["run_dir"]), model, spec["images"], stages=["prepare", "generate", stage],
                         **{stage: settings})  # fmt: skip
    ctx = context(recipe, stage)
    clock = StepClock()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    (align.run if stage == "align" else instruct.run)(ctx)
    log_history = json.loads((ctx.layout.stage_dir(stage) / "log_history.json").read_text())
    figures = steady_figures(clock, log_history, spec["batch_size"])
    trained = sum(ctx.info["trainable_parameters"].values())
    with torch.device("meta"):  # the shapes, for counting parameters
        shape = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(spec["base"]))
    seq_len = figures["tokens_per_s"] / figures["samples_per_s"]
    flops = training_flops_per_token(shape, trained, seq_len) * figures["tokens_per_s"]
    peak = spec.get("peak_tflops")
    memory = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    dtype = torch.float32 if dry else torch.bfloat16
    return {**figures, "config": config, "trainable_parameters": trained,
            "model_tflops_per_s": float(f"{flops / 1e12:.4g}"),
            "mfu": round(flops / (peak * 1e12), 4) if peak else None,
            "peak_gpu_memory_gb": round(memory, 2) if memory is not None else None,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "attn_implementation": attention_implementation(model.get("attn_implementation"), dtype) or "sdpa",
            "vision_feature_cache": ctx.info.get("vision_feature_cache")}  # fmt: skip


def _peak_tflops(device_name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((tflops for name, tflops in PEAK_TFLOPS.items() if name in device_name), None)


def _base_model(work: Path, dry: bool) -> Path:
    """Build the LLaVA-1.5-7B-shaped model from configs (random init) and save it once."""
    import torch
    from training_setup import CLIP_VIT_L_336, LLAMA_7B, write_components

    from llava_adapt.model.config import ModelConfig
    from llava_adapt.model.load import load_model

    vision, language = CLIP_VIT_L_336, LLAMA_7B
    if dry:
        vision, language = {**vision, **DRY_VISION}, {**language, **DRY_LANGUAGE}
    section = write_components(work / "components", vision, language)
    section["dtype"] = "float32" if dry else "bfloat16"
    model, processor = load_model(ModelConfig(**section), seed=0)
    base = work / "base"
    model.save_pretrained(base)
    processor.save_pretrained(base)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=30, help="optimisation steps per configuration (default 30)")
    parser.add_argument("--batch-size", type=int, help="per-device batch size (default: align 32, instruct 16)")
    parser.add_argument("--images", type=int, default=512, help="synthetic images (default 512)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: by device name)")
    parser.add_argument("--dry-run", action="store_true", help="toy shapes on a CPU, 3 steps, in this process")
    parser.add_argument("--work-dir", type=Path, help="keep the model, data and runs here (default: temporary)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        spec = json.loads(options.worker)
        Path(spec["out"]).write_text(json.dumps(run_config(spec)))
        return
    import torch

    if not options.dry_run and not torch.cuda.is_available():
        sys.exit("gpu_throughput.py needs a CUDA GPU and torch.cuda.is_available() is False here; run it on a GPU "
                 "machine, or add --dry-run for the toy-size check on this CPU")  # fmt: skip
    import transformers
    import trl
    from training_setup import make_recipe, write_data

    steps = 3 if options.dry_run else options.steps
    images = 8 if options.dry_run else options.images
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = _peak_tflops(device, options.peak_tflops)
    results: dict[str, Any] = {
        "device": device, "peak_tflops": peak, "dry_run": options.dry_run, "steps": steps,
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
                     "trl": trl.__version__},
        "configs": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="llava-adapt-gpu-bench-") as tmp:
        work = options.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = _base_model(work, options.dry_run)
        data_run = work / "data_run"
        write_data(make_recipe(data_run, {"source": "tiny"}, images))
        for config in options.configs.split(","):
            run_dir = work / config
            run_dir.mkdir()
            os.symlink(data_run / "data", run_dir / "data")
            kind = config.rsplit("_", 1)[0]
            spec = {"config": config, "dry_run": options.dry_run, "steps": steps, "images": images,
                    "batch_size": 2 if options.dry_run else options.batch_size or BATCH[kind],
                    "base": str(base), "run_dir": str(run_dir), "peak_tflops": peak}  # fmt: skip
            print(f"{config} ...", flush=True)
            if options.dry_run:
                results["configs"][config] = run_config(spec)
                continue
            out = run_dir / "result.json"
            done = subprocess.run([sys.executable, __file__, "--worker", json.dumps({**spec, "out": str(out)})])
            results["configs"][config] = json.loads(out.read_text()) if done.returncode == 0 else {
                "error": f"exit status {done.returncode} (out of memory? see the output above)"}  # fmt: skip
    header = f"{'config':<20}{'tokens/s/GPU':>13}{'samples/s':>10}{'MFU':>7}{'peak GB':>9}{'final loss':>11}"
    print(f"{device}, {steps} steps\n{header}")
    for config, fig in results["configs"].items():
        if "error" in fig:
            print(f"{config:<20}{fig['error']}")
            continue
        mfu = f"{fig['mfu']:.3f}" if fig["mfu"] is not None else "-"
        memory = f"{fig['peak_gpu_memory_gb']:.1f}" if fig["peak_gpu_memory_gb"] is not None else "-"
        print(f"{config:<20}{fig['tokens_per_s']:>13.0f}{fig['samples_per_s']:>10.2f}{mfu:>7}{memory:>9}"
              f"{fig['final_loss']:>11.3f}")  # fmt: skip
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
