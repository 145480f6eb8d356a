"""Install fake domain-plugin distributions for tests: a real `*.dist-info` with `entry_points.txt` on sys.path.

`importlib.metadata` discovers these exactly as it discovers a pip-installed package, so the registry is tested
through the real entry-point mechanism.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

TOY_DOMAIN = """
import random
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict

from llava_adapt.plugin import Benchmark, CaptionRecord, Domain, Skip, Source, VQAItem


class ToyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 4
    colour: str = "red"


def load(args, ctx):
    for i in range(args.count):
        Image.new("RGB", (8, 8), args.colour).save(ctx.output_dir / f"{i}.png")
        caption = f"a {args.colour} square"
        yield CaptionRecord(id=str(i), image=f"{i}.png", caption=caption, labels={"colour": args.colour})
    yield Skip(id="x", reason="toy skip")


def load_items(args, ctx):
    yield VQAItem(id="q", image="0.png", question="Colour?", answer="red", answer_type="closed", choices=["red"])


def metrics(items, predictions):
    return {"accuracy": sum(p == i.answer for i, p in zip(items, predictions)) / len(items)}


domain = Domain(
    name=NAME,
    description="A toy domain for tests.",
    sources={"toy": Source("Coloured squares", load, ToyArgs)},
    benchmarks={"toy_vqa": Benchmark("One question", load_items, metrics)},
    prompts_dir=Path(__file__).parent / "prompts",
    build_context=lambda record: record.caption,
    offline_generator=lambda record, prompt_type, rng: [
        {"from": "human", "value": "<image>\\nWhat colour?"},
        {"from": "gpt", "value": record.labels["colour"]},
    ],
)
"""


def install_plugin(
    site: Path,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str] | None = None,
    version: str = "1.0",
) -> None:
    """Write a distribution `dist` into the folder `site` (which the caller puts on sys.path).

    Args:
        site (`Path`): a folder on sys.path.
        dist (`str`): distribution name, e.g. "toy-plugin".
        entry_points (`dict[str, str]`): domain name -> "module:attribute" in the `llava_adapt.domains` group.
        modules (`dict[str, str]`, *optional*): module name -> source. A module whose source is `None`-like
            `"TOY:<name>"` gets the toy domain named `<name>` with a valid prompts folder.
        version (`str`, defaults to `"1.0"`): distribution version.
    """
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[llava_adapt.domains]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        package = site / module
        package.mkdir()
        if source.startswith("TOY:"):
            source = f"NAME = {source[4:]!r}\n" + TOY_DOMAIN
            prompts = package / "prompts" / "conversation"
            prompts.mkdir(parents=True)
            (prompts / "system_message.txt").write_text("You see an image.")
            (prompts / "000_context.txt").write_text("Caption: a red square")
            (prompts / "000_response.txt").write_text("Question:\\nWhat colour?\\n===\\nAnswer:\\nRed.")
        (package / "__init__.py").write_text(textwrap.dedent(source))


TOY_RECIPE = """\
# A toy recipe for tests.
domain: toy
run_dir: RUN_ROOT/run
seed: 3
stages: [prepare, generate, align, instruct, evaluate]
model:
  source: tiny
data:
  source: toy
  args: {count: 2}
generate:
  backend: offline
align:
  learning_rate: 1.0e-3
instruct:
  mode: lora
evaluate:
  benchmarks: [toy_vqa]
presets:
  tiny:
    align: {max_steps: 5}
    instruct: {max_steps: 7}
"""


def write_toy_recipe(folder: Path) -> Path:
    """Write the toy recipe (domain `toy`, run dir `folder/run`) to `folder/toy.yaml` and return its path."""
    path = folder / "toy.yaml"
    path.write_text(TOY_RECIPE.replace("RUN_ROOT", str(folder)))
    return path
