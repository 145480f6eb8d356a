"""The `finetune:` section: what `recipe validate` says about it, against the schema and against the domain."""

from __future__ import annotations

import pytest

from llava_adapt.domains.biomed import domain as biomed
from llava_adapt.recipe.loader import RecipeError, load_recipe
from llava_adapt.train.config import FinetuneConfig

WITH_FINETUNE = "stages=[prepare,generate,align,instruct,finetune,evaluate]"


def problems(*overrides: str, preset: str | None = "tiny") -> dict[str, str]:
    with pytest.raises(RecipeError) as info:
        load_recipe("biomed", preset=preset, overrides=list(overrides))
    return dict(info.value.problems)


def test_the_shipped_settings_validate_with_finetune_turned_on() -> None:
    tiny = load_recipe("biomed", preset="tiny", overrides=[WITH_FINETUNE]).recipe
    assert tiny.finetune.benchmark == "synthetic" and tiny.finetune.args == {"n_images": 120, "image_size": 64}
    assert tiny.finetune.mode is None and tiny.finetune.resolved_learning_rate("lora") == 2e-3
    full = load_recipe("biomed", overrides=[WITH_FINETUNE]).recipe
    assert full.finetune.benchmark == "vqa_rad" and full.finetune.args == {"path": "vqa_rad", "split": "train"}
    assert (full.finetune.num_train_epochs, full.finetune.learning_rate) == (3.0, 2e-5)  # LLaVA-Med's downstream
    assert "finetune" not in load_recipe("biomed", preset="tiny").recipe.stages  # the README's job is unchanged


def test_defaults_follow_llava_med_and_finetune_task_lora() -> None:
    cfg = FinetuneConfig(benchmark="vqa_rad")
    assert (cfg.num_train_epochs, cfg.mode, cfg.projector_lr) == (3.0, None, 2e-5)
    assert (cfg.resolved_learning_rate("full"), cfg.resolved_learning_rate("lora")) == (2e-5, 2e-4)
    assert FinetuneConfig(learning_rate=1e-4).resolved_learning_rate("full") == 1e-4


def test_split_defaults_to_train_only_where_the_benchmark_has_splits() -> None:
    vqa_args = biomed.benchmarks["vqa_rad"].args
    assert FinetuneConfig(args={"path": "x"}).loader_args(vqa_args) == {"path": "x", "split": "train"}
    assert FinetuneConfig(args={"path": "x", "split": "validation"}).loader_args(vqa_args)["split"] == "validation"
    chat_args = biomed.benchmarks["llava_med_chat"].args  # no split argument: nothing is added
    assert FinetuneConfig(args={"limit": 3}).loader_args(chat_args) == {"limit": 3}


def test_finetune_needs_a_benchmark() -> None:
    found = problems(WITH_FINETUNE, "finetune.benchmark=null")
    assert "needs finetune.benchmark" in found["finetune.benchmark"]


def test_an_unknown_benchmark_gets_a_did_you_mean() -> None:
    found = problems(WITH_FINETUNE, "finetune.benchmark=synthtic")
    assert "no benchmark 'synthtic'" in found["finetune.benchmark"]
    assert "Did you mean 'synthetic'?" in found["finetune.benchmark"]


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("finetune.args.n_imags=10", "finetune.args.n_imags", "Did you mean 'n_images'?"),
        ("finetune.args.split=validation", "finetune.args.split", "'test' or 'train'"),
        ("finetune.args.n_images=0", "finetune.args.n_images", "greater than or equal to 1"),
    ],
)
def test_bad_benchmark_arguments_name_their_key(override: str, key: str, fragment: str) -> None:
    found = problems(WITH_FINETUNE, override)
    assert fragment in found[key], found


def test_switching_the_benchmark_replaces_its_arguments() -> None:
    # the base recipe's vqa_rad arguments ({path, split}) do not carry over to slake, whose path is then missing
    found = problems(WITH_FINETUNE, "finetune.benchmark=slake", preset=None)
    assert found == {"finetune.args.path": "required key is missing"}
    loaded = load_recipe(
        "biomed", overrides=[WITH_FINETUNE, "finetune.benchmark=slake", "finetune.args.path=Slake1.0"]
    )
    assert loaded.recipe.finetune.args == {"path": "Slake1.0"}


def test_a_mode_that_instruct_did_not_train_is_refused() -> None:
    found = problems(WITH_FINETUNE, "finetune.mode=full")  # tiny: instruct trains a LoRA adapter
    assert "instruct.mode 'lora'" in found["finetune.mode"] and "finetune.mode: lora" in found["finetune.mode"]
    assert load_recipe("biomed", preset="tiny", overrides=[WITH_FINETUNE, "finetune.mode=lora"])
    found = problems(WITH_FINETUNE, "finetune.mode=lora", preset=None)  # the full recipe: instruct trains in full
    assert "a full model" in found["finetune.mode"]


def test_continuing_the_adapter_refuses_a_new_adapter_shape() -> None:
    found = problems(WITH_FINETUNE, "finetune.lora.r=4")
    assert "remove finetune.lora" in found["finetune.lora"]
    found = problems(WITH_FINETUNE, "finetune.train_vision_tower=true")
    assert "instruct.train_vision_tower" in found["finetune.train_vision_tower"]
    # without instruct, the fine-tune trains a new adapter: its shape is free
    new = load_recipe(
        "biomed", preset="tiny", overrides=["stages=[prepare,align,finetune,evaluate]", "finetune.lora.r=4"]
    )
    assert new.recipe.finetune.lora.r == 4


def test_qlora_on_the_tiny_model_is_refused() -> None:
    found = problems("stages=[prepare,align,finetune,evaluate]", "finetune.mode=qlora")
    assert "needs bitsandbytes and a GPU" in found["finetune.mode"]


def test_training_on_the_evaluated_split_is_refused() -> None:
    found = problems(WITH_FINETUNE, "finetune.args.split=test")
    assert "training on the test set" in found["finetune.args"] and "split 'test'" in found["finetune.args"]
    found = problems(WITH_FINETUNE, "evaluate.args.vqa_rad.split=train", preset=None)
    assert "split 'train' of 'vqa_rad'" in found["finetune.args"]
    # another split, or another copy of the data, or no evaluate stage: fine
    assert load_recipe("biomed", overrides=[WITH_FINETUNE, "finetune.args.split=validation"])
    assert load_recipe("biomed", overrides=[WITH_FINETUNE, "evaluate.args.vqa_rad={path: rad_b, split: train}"])
    assert load_recipe(
        "biomed", preset="tiny", overrides=["stages=[prepare,align,finetune]", "finetune.args.split=test"]
    )


def test_a_benchmark_without_splits_cannot_be_both_trained_and_evaluated() -> None:
    found = problems(WITH_FINETUNE, "finetune.benchmark=llava_med_chat", "evaluate.benchmarks=[llava_med_chat]")
    assert "has no split argument" in found["finetune.args"]
