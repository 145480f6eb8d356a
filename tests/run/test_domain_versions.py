"""Versions where they belong: a change to one part of a domain plans only the stages that read it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from llava_adapt.domain import Domain, DomainContractError, check_domain
from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.manifest import Manifest
from llava_adapt.run.pipeline import ADOPTED, legacy_stage_hashes, plan, run_pipeline, stage_hashes
from tests.plugins import write_toy_recipe

ALL = ["prepare", "generate", "align", "instruct", "evaluate"]


@pytest.fixture
def done(tmp_path: Path, plugin_site):
    """A toy recipe whose every stage completed (with stand-in stage functions), and its domain."""
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    loaded = load_recipe(str(write_toy_recipe(tmp_path)))
    domain = loaded.domain()
    manifest = run_pipeline(loaded, domain, stage_fn=lambda name: lambda ctx: None)
    return loaded.recipe, domain, manifest


def to_run(recipe, domain: Domain, manifest: Manifest) -> list[str]:
    return [step.name for step in plan(recipe, domain, Manifest.load(manifest.path)) if step.action != "skip"]


def test_nothing_changed_plans_nothing(done):
    assert to_run(*done) == []


def test_a_benchmark_version_bump_plans_only_evaluate(done):
    recipe, domain, manifest = done
    benchmarks = {name: dataclasses.replace(b, version="2") for name, b in domain.benchmarks.items()}
    assert to_run(recipe, dataclasses.replace(domain, benchmarks=benchmarks), manifest) == ["evaluate"]


def test_a_benchmark_the_recipe_does_not_evaluate_plans_nothing(done):
    recipe, domain, manifest = done
    benchmarks = {**domain.benchmarks, "other": dataclasses.replace(domain.benchmarks["toy_vqa"], version="2")}
    assert to_run(recipe, dataclasses.replace(domain, benchmarks=benchmarks), manifest) == []


def test_a_prompt_file_edit_plans_generate_onward(done, tmp_path: Path):
    recipe, domain, manifest = done
    prompts = shutil.copytree(domain.prompts_dir, tmp_path / "prompts")
    assert to_run(recipe, dataclasses.replace(domain, prompts_dir=prompts), manifest) == []  # same content
    system = next(prompts.glob("*/system_message.txt"))
    system.write_text(system.read_text() + " Be brief.")
    assert to_run(recipe, dataclasses.replace(domain, prompts_dir=prompts), manifest) == ALL[1:]


def test_a_source_version_bump_plans_everything(done):
    recipe, domain, manifest = done
    sources = {name: dataclasses.replace(s, version="2") for name, s in domain.sources.items()}
    assert to_run(recipe, dataclasses.replace(domain, sources=sources), manifest) == ALL


def test_the_domain_version_is_the_default_of_every_part(done):
    recipe, domain, manifest = done
    assert to_run(recipe, dataclasses.replace(domain, version="2"), manifest) == ALL
    # parts with their own versions keep them: only what reads the domain's code (generate) reruns
    sources = {name: dataclasses.replace(s, version="1") for name, s in domain.sources.items()}
    benchmarks = {name: dataclasses.replace(b, version="1") for name, b in domain.benchmarks.items()}
    pinned = dataclasses.replace(domain, sources=sources, benchmarks=benchmarks)
    assert to_run(recipe, pinned, manifest) == []
    assert to_run(recipe, dataclasses.replace(pinned, version="2"), manifest) == ALL[1:]


def test_a_run_hashed_by_an_older_llava_adapt_is_not_redone_and_then_follows_the_new_rules(done, tmp_path: Path):
    recipe, domain, manifest = done
    legacy = legacy_stage_hashes(recipe, domain)
    for name, entry in manifest.data["stages"].items():
        entry["config_hash"] = legacy[name]
    manifest.save()
    steps = plan(recipe, domain, Manifest.load(manifest.path))
    assert {(s.action, s.reason) for s in steps} == {("skip", ADOPTED)}
    loaded = load_recipe(str(tmp_path / "toy.yaml"))
    ran: list[str] = []
    run_pipeline(loaded, domain, stage_fn=lambda name: lambda ctx: ran.append(name))
    assert ran == [] and to_run(recipe, domain, manifest) == []
    adopted = Manifest.load(manifest.path)
    assert [adopted.stage(name)["config_hash"] for name in ALL] == [stage_hashes(recipe, domain)[name] for name in ALL]
    benchmarks = {name: dataclasses.replace(b, version="2") for name, b in domain.benchmarks.items()}
    assert to_run(recipe, dataclasses.replace(domain, benchmarks=benchmarks), manifest) == ["evaluate"]


def test_a_part_version_that_is_not_a_string_is_a_contract_error(done):
    _, domain, _ = done
    sources = {name: dataclasses.replace(s, version=2) for name, s in domain.sources.items()}
    benchmarks = {name: dataclasses.replace(b, version="") for name, b in domain.benchmarks.items()}
    with pytest.raises(DomainContractError) as info:
        check_domain(dataclasses.replace(domain, sources=sources, benchmarks=benchmarks), "'toy'")
    assert "sources['toy'].version must be a non-empty string or None, got 2" in str(info.value)
    assert "benchmarks['toy_vqa'].version must be a non-empty string or None, got ''" in str(info.value)
