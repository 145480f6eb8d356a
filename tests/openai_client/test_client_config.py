"""One client config that `generate:` and `evaluate.judge:` both extend; errors name the section the user edits."""

from __future__ import annotations

import httpx
import openai
import pytest

from llava_adapt.evaluate.config import JudgeConfig
from llava_adapt.generate.config import GenerateConfig
from llava_adapt.openai_client.config import ClientConfig
from llava_adapt.openai_client.retry import FatalRequestError, classify
from llava_adapt.openai_client.transport import ClientConfigError, MissingApiKeyError, make_client


def test_both_sections_take_every_client_setting_with_their_own_defaults():
    shared = set(ClientConfig.model_fields)
    assert shared <= set(GenerateConfig.model_fields) and shared <= set(JudgeConfig.model_fields)
    assert GenerateConfig().temperature == 0.7 and JudgeConfig().temperature == 0.0
    assert GenerateConfig().max_concurrency == 8 and JudgeConfig().max_concurrency == 4
    judge = JudgeConfig(backoff_base_s=0.1, max_rate_limit_wait_s=5, requests_per_minute=60)  # once generate-only
    assert judge.backoff_base_s == 0.1 and judge.max_rate_limit_wait_s == 5


@pytest.mark.parametrize(("config", "section"), [(GenerateConfig(), "generate"), (JudgeConfig(), "evaluate.judge")])
def test_client_errors_name_the_section(config: ClientConfig, section: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match=rf"{section}\.api_key_env"):
        make_client(config)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    with pytest.raises(ClientConfigError, match=rf"{section}\.base_url .* and {section}\.api_version"):
        make_client(config.model_copy(update={"provider": "azure"}))
    response = httpx.Response(404, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    error = openai.NotFoundError("no such model", response=response, body={"error": {"message": "no such model"}})
    with pytest.raises(FatalRequestError, match=rf"check {section}\.model and {section}\.base_url"):
        classify(error, config.api_key_env, config.model, config.timeout_s, config.section)
