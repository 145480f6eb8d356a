"""The domain registry: entry-point discovery, contract checks, broken plugins, conflicts, did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from llava_adapt.domain import Domain, DomainContractError, check_domain
from llava_adapt.registry import (
    DomainConflictError,
    DomainLoadError,
    DomainNotFoundError,
    registry,
)


def test_a_plugin_distribution_is_discovered_with_its_package(plugin_site):
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"}, version="2.3")
    entry = registry.entry("toy")
    assert (entry.package, entry.version, entry.target) == ("toy-plugin", "2.3", "toy_plugin:domain")
    domain = registry.get("toy")
    assert isinstance(domain, Domain) and domain.name == "toy"
    assert domain.prompt_types() == ["conversation"]
    row = next(r for r in registry.statuses() if r.name == "toy")
    assert (row.status, row.package, row.sources, row.benchmarks) == ("ok", "toy-plugin", ["toy"], ["toy_vqa"])


def test_unknown_domain_suggests_the_nearest_and_lists_installed(plugin_site):
    plugin_site("toy-plugin", {"toypath": "toy_plugin:domain"}, {"toy_plugin": "TOY:toypath"})
    with pytest.raises(DomainNotFoundError) as info:
        registry.get("toypth")
    message = str(info.value)
    assert "Did you mean 'toypath'?" in message
    assert "Installed domains:" in message and "toypath" in message


def test_two_distributions_claiming_one_name_is_an_error_naming_both(plugin_site):
    plugin_site("first-plugin", {"twin": "first_plugin:domain"}, {"first_plugin": "TOY:twin"})
    plugin_site("second-plugin", {"twin": "second_plugin:domain"}, {"second_plugin": "TOY:twin"})
    with pytest.raises(DomainConflictError) as info:
        registry.get("twin")
    assert "first-plugin 1.0" in str(info.value) and "second-plugin 1.0" in str(info.value)
    rows = [r for r in registry.statuses() if r.name == "twin"]
    assert {r.status for r in rows} == {"conflict"} and len(rows) == 2


def test_a_plugin_that_fails_to_import_is_listed_as_broken_without_hiding_others(plugin_site):
    plugin_site("bad-plugin", {"bad": "bad_plugin:domain"}, {"bad_plugin": "raise ImportError('needs torchvision')"})
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    rows = {r.name: r for r in registry.statuses()}
    assert rows["bad"].status == "broken"
    assert "needs torchvision" in rows["bad"].error and "bad-plugin" in rows["bad"].error
    assert rows["toy"].status == "ok"
    with pytest.raises(DomainLoadError, match="failed to import"):
        registry.get("bad")


def test_entry_point_name_must_match_the_domain_name(plugin_site):
    plugin_site("toy-plugin", {"alias": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})
    with pytest.raises(DomainLoadError, match="named 'alias' but the Domain says 'toy'"):
        registry.get("alias")


def test_an_entry_point_that_is_not_a_domain_is_rejected(plugin_site):
    plugin_site("odd-plugin", {"odd": "odd_plugin:domain"}, {"odd_plugin": "domain = {'name': 'odd'}"})
    with pytest.raises(DomainLoadError, match="must resolve to a llava_adapt.plugin.Domain, got dict"):
        registry.get("odd")


def test_contract_check_lists_every_missing_piece(tmp_path: Path):
    (tmp_path / "conversation").mkdir()
    (tmp_path / "conversation" / "000_context.txt").write_text("x")
    bad = Domain(
        name="Bad Name",
        description="",
        sources={},
        benchmarks={"b": "not a benchmark"},
        prompts_dir=tmp_path,
        build_context="not callable",
        offline_generator=lambda r, t, g: [],
        context_fields=("captions",),
        prompt_context_fields={"conversation": ("captions", "boxes"), "reasoning": ()},
        leak_patterns=("(unclosed",),
    )
    with pytest.raises(DomainContractError) as info:
        check_domain(bad, "'bad' (from bad-plugin 1.0)")
    message = str(info.value)
    assert message.startswith("domain plugin 'bad' (from bad-plugin 1.0) does not satisfy the Domain contract")
    for piece in (
        "lower-case identifier",
        "description is empty",
        "sources is empty",
        "benchmarks['b']",
        "build_context is not callable",
        "no system_message.txt",
        "000_context.txt has no matching 000_response.txt",
        "not a valid regular expression",
        "prompt_context_fields['conversation'] has ['boxes'], which are not in context_fields",
        "prompt_context_fields names prompt types that have no folder: ['reasoning']",
    ):
        assert piece in message


@pytest.mark.parametrize("name", ["biomed", "scienceqa", "general"])
def test_built_in_domains_register_through_the_entry_point_group(name):
    registry.clear()
    entry = registry.entry(name)
    assert entry.package == "llava-adapt"
    assert entry.target == f"llava_adapt.domains.{name}:domain"
    assert registry.get(name).name == name
