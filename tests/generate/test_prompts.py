"""The built-in prompt files load, and their own few-shot answers pass the parser and the domain's filters."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from llava_adapt.generate.filters import leak_filter, refusal_filter
from llava_adapt.generate.parse import finish_turns, parse_response
from llava_adapt.generate.prompts import select_prompt_types
from llava_adapt.openai_client.reply import Rejected
from llava_adapt.prompt_folder import PromptError, load_leak_file, load_prompt_type
from llava_adapt.registry import get_domain
from tests.generate.helpers import PROMPTS, make_domain

EXPECTED = {
    "general": {"conversation", "detailed_description", "complex_reasoning"},
    "biomed": {"conversation"},
    "scienceqa": {"explanation"},
}


@pytest.mark.parametrize("domain", sorted(EXPECTED))
def test_builtin_prompts_are_consistent(domain: str):
    prompts_dir = PROMPTS[domain]
    leak = leak_filter(file_patterns=load_leak_file(prompts_dir))
    assert leak.patterns, "every built-in domain ships a leak filter"
    types = select_prompt_types(make_domain(domain), None)
    assert set(types) == EXPECTED[domain]
    for name in types:
        prompt = load_prompt_type(prompts_dir, name)
        assert len(prompt.examples) >= 2
        messages = prompt.messages("the record")
        assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "the record"}
        for shot in prompt.examples:
            turns = parse_response(shot.response, prompt, random.Random(0))
            assert not isinstance(turns, Rejected), (name, turns)
            assert not isinstance(finish_turns(turns, leak, refusal_filter()), Rejected), name


def test_biomed_few_shots_cover_the_imaging_modalities():
    prompt = load_prompt_type(PROMPTS["biomed"], "conversation")
    contexts = " ".join(shot.context.lower() for shot in prompt.examples)
    for modality in ("chest radiograph", " ct ", "mri", "histopathology", "gross specimen"):
        assert modality in contexts, modality
    assert prompt.min_pairs >= 2 and (prompt.human, prompt.gpt) == ("User", "Assistant")
    assert "medical advice" in prompt.system_message


def test_unknown_prompt_type_lists_the_available_ones():
    with pytest.raises(PromptError, match="Did you mean 'conversation'.*Available: complex_reasoning"):
        select_prompt_types(make_domain(), ["conversaton"])


def test_malformed_format_file_is_named(tmp_path: Path):
    folder = tmp_path / "qa"
    folder.mkdir()
    (folder / "system_message.txt").write_text("Be helpful.")
    (folder / "000_context.txt").write_text("c")
    (folder / "000_response.txt").write_text("Question:\nq\n===\nAnswer:\na\n===")
    (folder / "format.json").write_text('{"format": "turns", "humans": "Q"}')
    with pytest.raises(PromptError, match=r"format.json: unknown keys \['humans'\]"):
        load_prompt_type(tmp_path, "qa")
    (folder / "format.json").write_text('{"format": "description"}')
    with pytest.raises(PromptError, match="no questions.txt"):
        load_prompt_type(tmp_path, "qa")
    (folder / "000_response.txt").unlink()
    with pytest.raises(PromptError, match="000_context.txt has no matching 000_response.txt"):
        load_prompt_type(tmp_path, "qa")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_few_shot_answers_pass_the_installed_domains_own_filters(name: str):
    domain = get_domain(name)
    leak = leak_filter(domain.leak_patterns, load_leak_file(domain.prompts_dir))
    assert set(domain.prompt_types()) == EXPECTED[name]
    for prompt_type in domain.prompt_types():
        prompt = load_prompt_type(domain.prompts_dir, prompt_type)
        for shot in prompt.examples:
            turns = parse_response(shot.response, prompt, random.Random(0))
            result = finish_turns(turns, leak, refusal_filter())
            assert not isinstance(result, Rejected), (name, prompt_type, result)
