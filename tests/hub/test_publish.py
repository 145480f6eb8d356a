"""`publish` against a Hub-compatible server on 127.0.0.1: file set, auth, visibility, branches, idempotency,
interrupted uploads, and the token never leaving the environment."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from peft import PeftModel
from PIL import Image
from transformers import AutoModelForImageTextToText

from llava_adapt.hub.bundle import write_bundle
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.publish import publish
from tests.hub.conftest import TOKEN, write_recipe
from tests.hub.fake_hub import FakeHub

pytestmark = pytest.mark.slow

REPO = "someone/llava-med-tiny"
ADAPTER_FILES = [
    "README.md",
    "adapter_config.json",
    "adapter_model.safetensors",
    "chat_template.jinja",
    "eval/slake/metrics.json",
    "eval/vqa_rad/metrics.json",
    "processor_config.json",
    "recipe.yaml",
    "tokenizer.json",
    "tokenizer_config.json",
]


def card_code(readme: str, replacements: dict[str, str]) -> str:
    """The Python block of a model card, with Hub ids replaced by local folders."""
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    for old, new in replacements.items():
        code = code.replace(f'"{old}"', repr(new))
    return code.replace("max_new_tokens=128", "max_new_tokens=3")  # the tiny model is slow to generate on 2 CPUs


def run_publish(run_dir: Path, **kwargs):
    kwargs.setdefault("datasets", [])
    return publish(run_dir, REPO, retry_wait=0, **kwargs)


def test_uploads_the_adapter_with_our_card(run_dir: Path, hub: FakeHub) -> None:
    result = run_publish(run_dir, private=True)
    assert result.changed and result.attempts == 1 and result.revision == "main"
    files = hub.files(REPO)
    assert sorted(files) == [".gitattributes", *ADAPTER_FILES]  # no checkpoints, no training_args.bin
    assert result.files == ADAPTER_FILES
    assert hub.repos[REPO].private
    assert hub.calls("POST", "/api/repos/create")[0].body["visibility"] == "private"
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests)
    assert len(hub.commits(REPO)) == 2  # the initial commit + ours: one commit for everything

    card = ModelCard(files["README.md"].decode())  # PEFT's README (text-generation, local base) was replaced
    assert card.data.pipeline_tag == "image-text-to-text" and card.data.library_name == "peft"
    assert card.data.base_model == "llava-hf/llava-1.5-7b-hf"
    assert "text-generation" not in files["README.md"].decode()
    assert "Not for clinical use" in files["README.md"].decode()  # the biomed plugin's card notice
    adapter_config = json.loads(files["adapter_config.json"])
    assert adapter_config["base_model_name_or_path"] == "llava-hf/llava-1.5-7b-hf"
    assert files["recipe.yaml"] == (run_dir / "recipe.yaml").read_bytes()
    assert files["eval/vqa_rad/metrics.json"] == (run_dir / "eval/vqa_rad/metrics.json").read_bytes()


def test_uploaded_adapter_loads_with_peft_as_the_card_says(
    run_dir: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_publish(run_dir)
    downloaded = tmp_path / "downloaded"
    for path, data in hub.files(REPO).items():
        (downloaded / path).parent.mkdir(parents=True, exist_ok=True)
        (downloaded / path).write_bytes(data)
    base_path = json.loads((run_dir / "instruct/adapter_config.json").read_text())["base_model_name_or_path"]
    from_hub = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_path), downloaded)
    from_run = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_path), run_dir / "instruct")
    expected = from_run.state_dict()
    assert any("modules_to_save" in key for key in expected)  # the projector rides in the adapter
    for key, value in from_hub.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)

    # The card's own code runs, with the Hub ids pointing at local copies.
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (90, 70), "red").save("example.png")
    code = card_code(
        hub.files(REPO)["README.md"].decode(), {"llava-hf/llava-1.5-7b-hf": base_path, REPO: str(downloaded)}
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert isinstance(namespace["model"], PeftModel) and namespace["output"].shape[0] == 1


def test_republishing_the_same_run_makes_no_commit(run_dir: Path, hub: FakeHub) -> None:
    first = run_publish(run_dir)
    second = run_publish(run_dir)
    assert not second.changed and second.commit_oid == first.commit_oid
    assert len(hub.commits(REPO)) == 2
    assert len(hub.calls("POST", "/commit/")) == 1


def test_changed_metrics_make_a_new_commit(run_dir: Path, hub: FakeHub) -> None:
    run_publish(run_dir)
    (run_dir / "eval/slake/metrics.json").write_text(json.dumps({"closed_accuracy": 0.9}), encoding="utf-8")
    result = run_publish(run_dir)
    assert result.changed
    assert json.loads(hub.files(REPO)["eval/slake/metrics.json"]) == {"closed_accuracy": 0.9}
    assert "| slake | closed_accuracy | diagnostic (undeclared) | 0.9000 |" in hub.files(REPO)["README.md"].decode()


def test_branch(run_dir: Path, hub: FakeHub) -> None:
    result = run_publish(run_dir, revision="experiment-1")
    assert result.revision == "experiment-1"
    assert "adapter_config.json" in hub.files(REPO, "experiment-1")
    assert sorted(hub.files(REPO, "main")) == [".gitattributes"]
    assert 'revision="experiment-1"' in hub.files(REPO, "experiment-1")["README.md"].decode()
    assert run_publish(run_dir, revision="experiment-1").changed is False  # the existing branch is reused


@pytest.mark.parametrize("fault", [500, "drop"])
def test_failed_commit_is_retried_and_completes(run_dir: Path, hub: FakeHub, fault: int | str) -> None:
    hub.commit_faults = [fault]
    result = run_publish(run_dir)
    assert result.attempts == 2 and result.changed
    assert sorted(hub.files(REPO)) == [".gitattributes", *ADAPTER_FILES]
    assert len(hub.commits(REPO)) == 2


def test_lost_answer_after_a_landed_commit_makes_no_duplicate(run_dir: Path, hub: FakeHub) -> None:
    hub.commit_faults = ["drop_after_apply"]
    result = run_publish(run_dir)
    assert result.attempts == 2 and result.changed  # this publish did change the repository
    assert len(hub.commits(REPO)) == 2  # the retry found the files already there
    assert result.commit_oid == hub.commits(REPO)[-1].oid


def test_interrupted_publish_completes_when_run_again(run_dir: Path, hub: FakeHub) -> None:
    hub.commit_faults = ["drop"]
    with pytest.raises(PublishError, match="failed after 1 attempts .*run the same command again") as info:
        run_publish(run_dir, max_attempts=1)
    assert TOKEN not in str(info.value)
    assert sorted(hub.files(REPO)) == [".gitattributes"]  # nothing half-written
    result = run_publish(run_dir)
    assert result.changed and sorted(hub.files(REPO)) == [".gitattributes", *ADAPTER_FILES]


def test_merged_publish_replaces_the_adapter(run_dir: Path, hub: FakeHub) -> None:
    run_publish(run_dir)
    hub.files(REPO)  # the adapter is there
    result = run_publish(run_dir, merged=True)
    files = hub.files(REPO)
    assert {"config.json", "model.safetensors", "generation_config.json"} <= set(files)
    assert {"adapter_config.json", "adapter_model.safetensors"}.isdisjoint(files)  # else transformers sees an adapter
    assert result.deleted == ["adapter_config.json", "adapter_model.safetensors"]
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "transformers" and card.data.to_dict()["base_model_relation"] == "finetune"
    assert run_publish(run_dir, merged=True).changed is False  # the merge is deterministic, so this dedups too


def test_files_added_on_the_hub_by_hand_are_kept(run_dir: Path, hub: FakeHub) -> None:
    run_publish(run_dir)
    head = hub.commits(REPO)[-1]
    head.files["figures/loss.png"] = b"png"
    (run_dir / "eval/slake/metrics.json").unlink()
    result = run_publish(run_dir)
    assert result.deleted == ["eval/slake/metrics.json"]
    assert "figures/loss.png" in hub.files(REPO)


def test_no_token_says_how_to_log_in(run_dir: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PublishError, match=r"set HF_TOKEN .* or run `hf auth login`"):
        run_publish(run_dir)
    assert hub.requests == []


def test_rejected_token(run_dir: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PublishError, match="rejected the token"):
        run_publish(run_dir)


def test_run_not_ready_fails_before_any_request(run_dir: Path, hub: FakeHub) -> None:
    (run_dir / "manifest.json").write_text(json.dumps({"stages": {}}), encoding="utf-8")
    with pytest.raises(PublishError, match="instruct stage"):
        run_publish(run_dir)
    assert hub.requests == []


def test_token_is_never_written_or_logged(
    run_dir: Path, hub: FakeHub, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    hub.commit_faults = [500]
    run_publish(run_dir, merged=True)
    run_publish(run_dir)
    out, err = capfd.readouterr()
    assert TOKEN not in caplog.text + out + err
    assert "publishing" in caplog.text  # the logs were captured
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for data in hub.files(REPO).values():
        assert TOKEN.encode() not in data
    assert not list(run_dir.glob(".publish-*"))  # the staging folder is gone


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"source": "llava", "name_or_path": "llava-hf/llava-1.5-7b-hf"}, "llava-hf/llava-1.5-7b-hf"),
        ({"source": "llava", "name_or_path": "/models/llava-1.5-7b-hf"}, None),
        ({"source": "components", "vision_tower": "openai/clip-vit-base-patch16", "language_model": "gpt2"}, None),
        ({"source": "tiny"}, None),
    ],
)
def test_published_adapter_config_never_names_a_local_path(
    run_dir: Path, tmp_path: Path, model: dict, expected: str | None
) -> None:
    write_recipe(run_dir, model=model)
    write_bundle(run_dir, tmp_path / "bundle", REPO, datasets=[])
    config = json.loads((tmp_path / "bundle/adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == expected
    local = json.loads((run_dir / "instruct/adapter_config.json").read_text())["base_model_name_or_path"]
    assert local.startswith("/")  # the run's own copy keeps its local base, which export_merged needs
    assert config["r"] == 4 and config["modules_to_save"] == ["multi_modal_projector"]
