"""The general domain: contract, synthetic shapes, held-out benchmark, offline generator, prompt context."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_adapt.domain import SourceContext, check_domain
from llava_adapt.domains.general import HeldOutShapesArgs, domain
from llava_adapt.domains.general.questions import CLOSED_COLOR_PROMPT
from llava_adapt.domains.general.shapes import COLORS, ShapesArgs
from llava_adapt.generate.jobs import user_message
from llava_adapt.plugin import DataError


def _ctx(tmp_path: Path, name: str) -> SourceContext:
    return SourceContext(data_root=tmp_path, output_dir=tmp_path / name, seed=0)


def test_domain_satisfies_the_contract() -> None:
    assert check_domain(domain, "general") is domain
    assert {"conversation", "detailed_description", "complex_reasoning"} <= set(domain.prompt_types())


def test_source_is_deterministic_and_labelled(tmp_path: Path) -> None:
    first = list(domain.sources["shapes"].load(ShapesArgs(num_images=5, image_size=48), _ctx(tmp_path, "a")))
    second = list(domain.sources["shapes"].load(ShapesArgs(num_images=5, image_size=48), _ctx(tmp_path, "b")))
    assert first == second
    for record in first:
        a = np.asarray(Image.open(tmp_path / "a" / record.image))
        assert a.shape == (48, 48, 3)
        assert np.array_equal(a, np.asarray(Image.open(tmp_path / "b" / record.image)))
        assert record.labels["color"] in COLORS and record.labels["color"] in record.caption
        assert record.context["boxes"].startswith(f"{record.labels['color']} {record.labels['shape']}: [")


def test_benchmark_is_held_out_and_closed(tmp_path: Path) -> None:
    train = list(domain.sources["shapes"].load(ShapesArgs(num_images=20), _ctx(tmp_path, "train")))
    items = list(domain.benchmarks["shapes_color"].load(HeldOutShapesArgs(num_images=20), _ctx(tmp_path, "bench")))
    train_pixels = {np.asarray(Image.open(tmp_path / "train" / r.image)).tobytes() for r in train}
    assert not train_pixels & {np.asarray(Image.open(tmp_path / "bench" / i.image)).tobytes() for i in items}
    assert all(i.answer_type == "closed" and i.choices == list(COLORS) and i.answer in COLORS for i in items)
    bench = domain.benchmarks["shapes_color"]
    assert bench.metrics(items, [i.answer for i in items])["accuracy"] == 1.0
    assert bench.metrics(items, ["purple"] * len(items)) == {"accuracy": 0.0, "chance": 0.25, "num_closed": 20}


@pytest.mark.parametrize("prompt_type", ["conversation", "detailed_description", "complex_reasoning"])
def test_offline_generator_writes_llava_turns(tmp_path: Path, prompt_type: str) -> None:
    (record,) = domain.sources["shapes"].load(ShapesArgs(num_images=1), _ctx(tmp_path, "a"))
    turns = domain.offline_generator(record, prompt_type, random.Random(0))
    assert turns == domain.offline_generator(record, prompt_type, random.Random(0))
    assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
    assert turns[0]["value"].startswith("<image>\n")
    assert all("<image>" not in t["value"] for t in turns[1:])
    if prompt_type == "conversation":
        closed = CLOSED_COLOR_PROMPT.format(question="What color is the shape?", choices=", ".join(COLORS))
        assert turns[0]["value"] == f"<image>\n{closed}"
        assert turns[1]["value"] == record.labels["color"]


def test_offline_generator_rejects_unknown_types_and_unlabelled_records(tmp_path: Path) -> None:
    (record,) = domain.sources["shapes"].load(ShapesArgs(num_images=1), _ctx(tmp_path, "a"))
    with pytest.raises(DataError, match="unknown prompt type 'poetry'"):
        domain.offline_generator(record, "poetry", random.Random(0))
    with pytest.raises(DataError, match="lacks the shape labels"):
        domain.offline_generator(type(record)(id="x", image="x", caption="c"), "conversation", random.Random(0))


def test_prompt_context_uses_caption_and_allow_listed_boxes_only(tmp_path: Path) -> None:
    (record,) = domain.sources["shapes"].load(ShapesArgs(num_images=1), _ctx(tmp_path, "a"))
    message = user_message(domain, record)
    assert message == f"{record.caption}\n\n{record.context['boxes']}"
    assert record.labels["background"] not in message.replace(record.caption, "")
    # LLaVA's conversation prompt sees the captions only; description and reasoning see the boxes too.
    assert user_message(domain, record, "conversation") == record.caption
    for prompt_type in ("detailed_description", "complex_reasoning"):
        assert user_message(domain, record, prompt_type) == message
