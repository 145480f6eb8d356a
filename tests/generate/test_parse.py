"""From response text to turns: formats, every reject reason, `<image>` placement."""

from __future__ import annotations

import random

import pytest

from llava_adapt.generate.filters import leak_filter, refusal_filter
from llava_adapt.generate.parse import response_turns
from llava_adapt.openai_client.reply import Rejected
from llava_adapt.prompt_folder import PromptType

QA = PromptType("conversation", "sys", (), min_pairs=2)
DIALOGUE = PromptType("conversation", "sys", (), human="User", gpt="Assistant", min_pairs=1)
DESCRIBE = PromptType("detail", "sys", (), format="description", questions=("Describe it.", "What is this?"))
LEAK = leak_filter([r"(?i)\bthe caption\b"])


def reply(content, finish="stop", refusal=None):
    return {"choices": [{"finish_reason": finish, "message": {"content": content, "refusal": refusal}}]}


def turns(response, prompt=QA):
    return response_turns(response, prompt, random.Random(0), LEAK, refusal_filter())


def test_question_answer_format_with_markdown_and_separators():
    text = (
        "**Question:** What is it?\n===\n**Answer:** A dog.\n\nIt is brown.\n===\nQuestion:\nWhere?\nAnswer:\nOutside."
    )
    assert turns(reply(text)) == [
        {"from": "human", "value": "<image>\nWhat is it?"},
        {"from": "gpt", "value": "A dog.\n\nIt is brown."},
        {"from": "human", "value": "Where?"},
        {"from": "gpt", "value": "Outside."},
    ]


def test_dialogue_format_and_image_token_moved_to_the_front():
    text = "User: What scan is this? <image>\n\nAssistant: A CT scan of the abdomen."
    assert turns(reply(text), DIALOGUE) == [
        {"from": "human", "value": "<image>\nWhat scan is this?"},
        {"from": "gpt", "value": "A CT scan of the abdomen."},
    ]


def test_description_format_draws_the_question_from_the_list():
    result = turns(reply("  A long description.  "), DESCRIBE)
    assert result[0]["value"] in ("<image>\nDescribe it.", "<image>\nWhat is this?")
    assert result[1] == {"from": "gpt", "value": "A long description."}


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"choices": []}, "no choices"),
        ({}, "no choices"),
        (reply(None, refusal="I can't help with that."), "refusal"),
        (reply("Question: a\nAnswer: b", finish="length"), "truncated"),
        (reply("", finish="content_filter"), "content filter"),
        (reply("   "), "empty response"),
        (reply(None), "empty response"),
        (reply("I'm sorry, but I can't help with this request."), "refusal"),
        (reply("Question: q\nAnswer: I cannot see the image, so I don't know.\nQuestion: r\nAnswer: s"), "refusal"),
        (reply("Here you go.\nQuestion: q\nAnswer: a\nQuestion: r\nAnswer: s"), "unparseable"),
        (reply("Question: q\nQuestion: r\nAnswer: a"), "unparseable"),
        (reply("Question: q\nAnswer: a\nQuestion: r"), "unparseable"),
        (reply("Question: q\nAnswer:\nQuestion: r\nAnswer: s"), "unparseable"),
        (reply("No markers at all."), "unparseable"),
        (reply("Question: q\nAnswer: a"), "too few turns"),
        (reply("Question: q\nAnswer: As the caption notes, a dog.\nQuestion: r\nAnswer: s"), "leak"),
    ],
)
def test_each_unusable_response_has_its_reason(response, reason):
    result = turns(response)
    assert isinstance(result, Rejected) and result.reason == reason and result.detail
