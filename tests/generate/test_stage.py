"""Stage `generate` inside a run directory: counts, usage and cost in the manifest facts, resume after failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llava_adapt.recipe.loader import load_recipe
from llava_adapt.run.layout import RunLayout
from llava_adapt.stages.context import StageContext
from llava_adapt.stages.generate import GenerateError, run
from tests.generate.fake_openai import FakeOpenAI
from tests.generate.helpers import read_rows, write_captions
from tests.plugins import write_toy_recipe


def stage(tmp_path: Path, overrides: list[str], resume: bool = False) -> StageContext:
    loaded = load_recipe(str(write_toy_recipe(tmp_path)), overrides=overrides)
    return StageContext("generate", loaded.recipe, loaded.domain(), RunLayout(tmp_path / "run"), resume=resume)


@pytest.fixture
def toy(plugin_site) -> None:
    plugin_site("toy-plugin", {"toy": "toy_plugin:domain"}, {"toy_plugin": "TOY:toy"})


def test_offline_stage_counts_and_records(tmp_path: Path, toy):
    ctx = stage(tmp_path, [])
    ctx.layout.data_dir.mkdir(parents=True)
    write_captions(ctx.layout.captions, 5, labels={"colour": "red"})
    run(ctx)
    rows = read_rows(ctx.layout.instruct_data)
    assert len(rows) == 5 and ctx.kept == 5 and not ctx.skipped
    assert rows[0]["conversations"] == [
        {"from": "human", "value": "<image>\nWhat colour?"},
        {"from": "gpt", "value": "red"},
    ]
    assert ctx.info["generate"]["backend"] == "offline" and ctx.info["generate"]["ok"] == 5
    json.dumps(ctx.info)  # the manifest can store it


def test_openai_stage_fails_while_requests_fail_and_resumes(tmp_path: Path, toy, api_key: str):
    with FakeOpenAI(responder=lambda body: "Question:\nWhat colour?\n===\nAnswer:\nRed.\n===") as server:
        overrides = [
            "generate.backend=openai",
            f"generate.base_url={server.url}",
            "generate.api_key_env=LLAVA_ADAPT_TEST_KEY",
            "generate.model=gpt-4o",
            "generate.max_retries=1",
            "generate.backoff_base_s=0.01",
        ]
        ctx = stage(tmp_path, overrides)
        ctx.layout.data_dir.mkdir(parents=True)
        write_captions(ctx.layout.captions, 4)
        server.fault("503", match="number 1:", times=2)
        with pytest.raises(GenerateError, match="1 requests still failed after 1 retries"):
            run(ctx)
        assert ctx.kept == 3 and dict(ctx.skipped) == {"request failed after retries": 1}
        facts = ctx.info["generate"]
        assert facts["requests"] == 5 and facts["retries"] == 1 and facts["cost_usd"] > 0
        assert facts["usage"]["online"]["responses"] == 3

        resumed = stage(tmp_path, overrides, resume=True)
        run(resumed)
        assert resumed.kept == 4 and not resumed.skipped
        assert resumed.info["generate"]["requests"] == 1
    assert len(read_rows(resumed.layout.instruct_data)) == 4
    assert read_rows(resumed.layout.instruct_rejects) == []


def test_all_rejected_fails_with_the_first_reason(tmp_path: Path, toy):
    ctx = stage(tmp_path, [])
    ctx.layout.data_dir.mkdir(parents=True)
    write_captions(ctx.layout.captions, 3)  # no "colour" label: the toy offline generator cannot answer
    with pytest.raises(GenerateError) as failure:
        run(ctx)
    message = str(failure.value)
    assert "no conversations out of 3 jobs" in message
    assert "the first: offline generator error: KeyError: 'colour'" in message
    assert dict(ctx.skipped) == {"offline generator error": 3}
