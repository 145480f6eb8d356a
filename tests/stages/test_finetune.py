"""Stage `finetune`: benchmark questions become one-turn samples; a short real run of the biomed tiny recipe with
`finetune` keeps training instruct's adapter, evaluate scores the result, and reruns and resumes do only what
changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from llava_adapt.cli import app
from llava_adapt.data.records import VQAItem
from llava_adapt.domains.biomed import domain as biomed
from llava_adapt.evaluate.generation import format_question
from llava_adapt.evaluate.resolve import resolve_model
from llava_adapt.hub.bundle import write_bundle
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import load_run
from llava_adapt.model.config import TinyModelConfig
from llava_adapt.model.load import load_trained
from llava_adapt.model.tiny import build_tiny_model
from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages import evaluate, finetune
from llava_adapt.stages.context import StageContext
from llava_adapt.train.examples import IGNORE_INDEX, SampleTokenizer

pytestmark = pytest.mark.slow

STAGES = "stages=[prepare,generate,align,instruct,finetune,evaluate]"
# The tiny preset (instruct: LoRA with lm_head, compare_without_align), cut to a few steps on a few images.
SHORT = [STAGES, "data.args.n_images=12", "data.args.dicom_test_files=[]", "generate.samples_per_record=1",
         "align.max_steps=2", "instruct.max_steps=2", "finetune.max_steps=3", "finetune.save_steps=3",
         "finetune.logging_steps=1", "finetune.args.n_images=4", "evaluate.args.synthetic.n_images=2",
         "evaluate.baseline=false", "model.tiny.text_pretraining_steps=20"]  # fmt: skip


def _run(run_dir: Path, *overrides: str) -> str:
    args = ["recipe", "run", "biomed", "--preset", "tiny", "--run-dir", str(run_dir), *SHORT, *overrides]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["stages"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Path]]]:
    """A finished short run and the folders evaluate loaded its models from (do not modify: copy it)."""
    run_dir = tmp_path_factory.mktemp("finetune") / "run"
    loaded: list[Path] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("LLAVA_ADAPT_PROGRESS", "0")
        real = evaluate.load_trained

        def spy(path, *args, **kwargs):
            loaded.append(Path(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(evaluate, "load_trained", spy)
        _run(run_dir)
    yield run_dir, loaded


def test_vqa_items_become_the_question_evaluate_asks_and_the_answer_as_the_only_target(tmp_path: Path) -> None:
    _, processor = build_tiny_model(TinyModelConfig(), seed=0)
    items = [
        VQAItem("q1", "a.png", "Is there a lesion?", "yes", "closed", choices=["yes", "no"]),
        VQAItem("q2", "b.png", "Which organ is shown?", "left lung", "open"),
    ]
    prompt = "{question} Options: {choices}. Answer in one word."
    samples = finetune.vqa_samples(items, [Path("images/a.png"), tmp_path / "b.png"], prompt)
    assert [s.id for s in samples] == ["q1", "q2"]
    assert samples[0].image == str(Path("images/a.png").resolve()) and samples[1].image == str(tmp_path / "b.png")
    tokenizer = SampleTokenizer(processor)
    for item, sample in zip(items, samples, strict=True):
        user, assistant = sample.messages
        assert user["content"] == [{"type": "image"}, {"type": "text", "text": format_question(item, prompt)}]
        assert assistant == {"role": "assistant", "content": [{"type": "text", "text": item.answer}]}
        # the training text starts with exactly what evaluate sends (generation prompt included), then the answer
        asked = processor.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
        trained = processor.apply_chat_template(sample.messages, tokenize=False)
        assert trained.startswith(asked) and trained[len(asked) :].lstrip().startswith(item.answer)
        tokens = tokenizer(sample)
        target = [t for t, label in zip(tokens.input_ids, tokens.labels, strict=True) if label != IGNORE_INDEX]
        assert processor.tokenizer.decode(target, skip_special_tokens=True).strip() == item.answer
    assert "Options: yes, no. Answer in one word." in samples[0].messages[0]["content"][1]["text"]


def test_finetune_keeps_training_instructs_adapter(finished: tuple[Path, list[Path]]) -> None:
    run_dir, _ = finished
    instruct, tuned = run_dir / "instruct", run_dir / "finetune"
    config = json.loads((tuned / "adapter_config.json").read_text())
    reference = json.loads((instruct / "adapter_config.json").read_text())
    assert (
        config["base_model_name_or_path"] == reference["base_model_name_or_path"] == str((run_dir / "align").resolve())
    )
    for key in ("r", "lora_alpha", "target_modules", "modules_to_save"):
        assert config[key] == reference[key], key
    before, after = load_file(instruct / "adapter_model.safetensors"), load_file(tuned / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("lora_B" in k for k in changed) and any("multi_modal_projector" in k for k in changed)

    stages = _manifest(run_dir)
    info = stages["finetune"]["info"]
    assert (info["start"], info["starts_from"]) == ("adapter", str(instruct.resolve()))
    assert info["trainable_parameters"] == stages["instruct"]["info"]["trainable_parameters"]
    assert info["global_step"] == 3 and info["learning_rate"] == 2e-3  # the tiny preset's finetune section
    # every question of the 4 train-split images is a sample; the images were drawn into finetune/data/images
    rows = [json.loads(line) for line in (tuned / "data" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == info["items"] == stages["finetune"]["counts"]["kept"] >= 4 * 4
    assert all(row["id"].startswith("synthetic-vqa-train-") and Path(row["image"]).is_file() for row in rows)
    assert {Path(row["image"]).parent for row in rows} == {(tuned / "data/images/synthetic/vqa_train").resolve()}
    # the projector keeps its own learning rate on the PEFT-wrapped model (finetune.projector_lr)
    optimizer = torch.load(tuned / "checkpoints" / "checkpoint-3" / "optimizer.pt", weights_only=True)
    by_lr: dict[float, int] = {}
    for group in optimizer["param_groups"]:
        by_lr[group["initial_lr"]] = by_lr.get(group["initial_lr"], 0) + len(group["params"])
    assert by_lr.keys() == {1e-3, 2e-3} and by_lr[1e-3] == 4  # the projector copy: 2 linear layers, weight + bias


def test_evaluate_scores_the_finetuned_models(finished: tuple[Path, list[Path]]) -> None:
    run_dir, loaded = finished
    assert loaded == [run_dir / "finetune", run_dir / "finetune" / "without_align"]
    metrics = json.loads((run_dir / "eval" / "synthetic" / "metrics.json").read_text())
    assert metrics["model"] == "finetune" and "closed_accuracy" in metrics["without_align"]
    # the ablation was fine-tuned the same way, from instruct's own ablation, over that one's base
    ablation = json.loads((run_dir / "finetune" / "without_align" / "adapter_config.json").read_text())
    assert ablation["base_model_name_or_path"] == str((run_dir / "instruct" / "base").resolve())
    info = _manifest(run_dir)["finetune"]["info"]["without_align"]
    assert info["starts_from"] == str((run_dir / "instruct" / "without_align").resolve())
    assert info["global_step"] == 3
    # the run report shows the stage and its loss curve
    assert (run_dir / "report" / "finetune_curves.png").is_file()
    assert "<td>finetune</td>" in " ".join((run_dir / "report.html").read_text().split())
    assert "before align, then fine-tuned the same way (finetune)" in (run_dir / "report.html").read_text()


def test_the_finetuned_adapter_loads_with_stock_peft(finished: tuple[Path, list[Path]]) -> None:
    run_dir, _ = finished
    tuned = run_dir / "finetune"
    base_path = json.loads((tuned / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_path), tuned).eval()
    processor = AutoProcessor.from_pretrained(tuned)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a lesion?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=Image.new("RGB", (64, 64), "gray"), text=text, return_tensors="pt")
    merged, _ = load_trained(tuned)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, merged.eval()(**inputs).logits, atol=1e-4)


def test_changing_only_finetune_reruns_finetune_and_evaluate(
    finished: tuple[Path, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAVA_ADAPT_PROGRESS", "0")
    run_dir = Path(shutil.copytree(finished[0], tmp_path / "run"))
    before = _manifest(run_dir)
    output = _run(run_dir, "finetune.max_steps=4")
    for stage in ("prepare", "generate", "align", "instruct"):
        assert f"{stage}: skipped" in output
        assert _manifest(run_dir)[stage] == before[stage]
    after = _manifest(run_dir)
    for stage in ("finetune", "evaluate"):
        assert after[stage]["config_hash"] != before[stage]["config_hash"] and after[stage]["status"] == "complete"
        assert f"{stage}: running" in output
    assert after["finetune"]["info"]["global_step"] == 4


def _context(run_dir: Path, *overrides: str, resume: bool = False) -> StageContext:
    recipe = load_recipe("biomed", preset="tiny", overrides=[*SHORT, *overrides], run_dir=str(run_dir)).recipe
    return StageContext("finetune", recipe, biomed, RunLayout(run_dir), resume=resume)


def test_a_resumed_finetune_does_not_redo_a_finished_training(
    finished: tuple[Path, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = Path(shutil.copytree(finished[0], tmp_path / "run"))
    ablation = run_dir / "finetune" / "without_align"
    for path in ablation.iterdir():  # what a kill during the ablation's first steps leaves behind
        if path.is_file():
            path.unlink()
    shutil.rmtree(ablation / "checkpoints")
    adapter = (run_dir / "finetune" / "adapter_model.safetensors").read_bytes()
    trained: list[Path] = []
    real = finetune.train_in_stage

    def spy(ctx, model, processor, samples, settings, stage_dir, **kwargs):
        trained.append(Path(stage_dir))
        return real(ctx, model, processor, samples, settings, stage_dir, **kwargs)

    monkeypatch.setattr(finetune, "train_in_stage", spy)
    ctx = _context(run_dir, resume=True)
    finetune.run(ctx)
    assert trained == [ablation]
    assert (run_dir / "finetune" / "adapter_model.safetensors").read_bytes() == adapter
    finished_info = _manifest(finished[0])["finetune"]
    assert (
        ctx.kept == finished_info["counts"]["kept"] and ctx.info["train_loss"] == finished_info["info"]["train_loss"]
    )
    assert ctx.info["without_align"]["global_step"] == 3 and (ablation / finetune.RESULT_FILE).is_file()


def test_without_instruct_it_trains_a_new_adapter_or_the_full_model(
    finished: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    run_dir = Path(shutil.copytree(finished[0], tmp_path / "run", ignore=shutil.ignore_patterns("finetune")))
    # LLaVA's finetune_task_lora.sh: a new LoRA on the aligned model
    ctx = _context(run_dir, "stages=[prepare,align,finetune]", "finetune.lora={r: 4, alpha: 8}")
    finetune.run(ctx)
    config = json.loads((run_dir / "finetune" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((run_dir / "align").resolve()) and config["r"] == 4
    assert ctx.info["start"] == "new" and ctx.info["learning_rate"] == 2e-3
    assert RunLayout(run_dir).final_model_dir(ctx.recipe.stages) == run_dir / "finetune"

    # full fine-tune of the untrained model: saved as a whole model; the vision tower stays frozen
    shutil.rmtree(run_dir / "finetune")
    ctx = _context(run_dir, "stages=[finetune]", "finetune.mode=full")
    finetune.run(ctx)
    tuned = load_file(run_dir / "finetune" / "model.safetensors")
    base = load_file(run_dir / "finetune" / "base" / "model.safetensors")
    vision = [k for k in base if "vision_tower" in k]
    assert vision and all(torch.equal(tuned[k], base[k]) for k in vision)
    assert any(not torch.equal(tuned[k], base[k]) for k in base if "language_model" in k)
    assert ctx.info["start"] == "new" and ctx.info["learning_rate"] == 2e-3


def test_publishing_export_and_eval_use_the_finetuned_model(finished: tuple[Path, list[Path]], tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(finished[0], tmp_path / "run"))
    run = load_run(run_dir)
    assert (run.model_stage, run.model_dir, run.kind) == ("finetune", run_dir / "finetune", "adapter")
    write_bundle(run_dir, tmp_path / "bundle", "someone/tiny-finetuned")
    bundle = tmp_path / "bundle"
    assert (bundle / "adapter_model.safetensors").read_bytes() == (
        run.model_dir / "adapter_model.safetensors"
    ).read_bytes()
    card = (bundle / "README.md").read_text()
    assert "Downstream fine-tune (`finetune`):** the stage-2 model trained further (the same adapter)" in card
    assert "`train` split of the `synthetic` benchmark" in card and "| finetune |" in card
    resolved = resolve_model(run_dir, device="cpu")
    merged, processor = load_trained(run_dir / "finetune")
    inputs = processor(
        images=Image.new("RGB", (64, 64), "gray"),
        text=processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which side?"}]}],
            add_generation_prompt=True,
        ),
        return_tensors="pt",
    )
    with torch.no_grad():
        assert torch.allclose(resolved.model(**inputs).logits, merged.eval()(**inputs).logits, atol=1e-5)

    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["stages"]["finetune"]["status"] = "failed"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishError, match=r"the finetune stage of .* has not completed \(its status is 'failed'\)"):
        load_run(run_dir)


def test_a_moved_run_fine_tunes_from_the_base_its_adapter_carries(
    finished: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    run_dir = Path(shutil.copytree(finished[0], tmp_path / "moved", symlinks=True))
    instruct = run_dir / "instruct"
    config = json.loads((instruct / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "where-it-was" / "align")  # the folder no longer exists
    (instruct / "adapter_config.json").write_text(json.dumps(config))
    ctx = _context(run_dir)
    model, _, peft_config = finetune.load_start(ctx, finetune.Start("adapter", str(instruct), "lora"))
    assert peft_config is None and isinstance(model, PeftModel)
    expected, _ = load_trained(finished[0] / "instruct")
    merged = model.merge_and_unload().state_dict()
    assert all(torch.equal(merged[key], value) for key, value in expected.state_dict().items())
