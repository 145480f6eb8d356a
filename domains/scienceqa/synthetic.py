"""A tiny ScienceQA-shaped data set, built in code: for the tests and the offline `tiny` preset.

`build_synthetic_scienceqa` writes the same files the real data comes in — `problems.json` + `pid_splits.json` +
`images/<split>/<pid>/image.png` (lupantech layout), or `data/{train,validation,test}-00000-of-00001.parquet`
(the Hugging Face layout) — with problems that a small model can learn, and that fill every category the metrics
report. Four kinds of problem take turns, each with its options in a fixed order (see `SQUARE_CHOICES`...):

| kind | subject | grade | hint | image | the answer is in |
|---|---|---|---|---|---|
| colour of the square | natural science | grade3 | no | yes | the image (a square anywhere, 24-40 px) |
| colour on the map | social science | grade8 | yes | yes | the image (one highlighted state) |
| which kind of word | language science | grade5 | no | no | the question (a colour, shape or number word) |
| colour of the fence | natural science | grade10 | yes | no | the hint |

Images are 64 px, with jittered colours, positions and backgrounds, so no two problems share an image.
Each split is drawn from its own `random.Random` stream (named after the split and `seed`), so the same arguments
always write the same bytes, and a split's problems do not depend on the other splits' sizes: the test set of
`n_train=200` and of `n_train=2000` is the same (only the problem ids, numbered on from the splits before,
differ).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw

from llava_adapt.plugin import SourceContext, atomic_path, write_json

# Each colour is one token of the tiny model's tokenizer (purple, orange, pink... are split into pieces).
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
}
# The options of each kind, in their fixed order (ScienceQA's templated skills keep theirs: "(A) a solid
# (B) a liquid (C) a gas"). Shuffled options are what the tiny model cannot learn in minutes: trained on 2,000
# problems with shuffled options for 400 steps, it scored 39 % (chance 36 %) and never answered C or D.
SQUARE_CHOICES = ("red", "green", "blue")
MAP_CHOICES = ("yellow", "blue", "red", "green")
WORD_CHOICES = ("a color", "a shape", "a number")
FENCE_CHOICES = ("green", "red", "yellow", "blue")
WORDS = {
    "a color": ("red", "green", "blue", "yellow", "gray"),
    "a shape": ("circle", "square", "triangle", "star", "rectangle"),
    "a number": ("one", "two", "three", "four", "five"),
}
NAMES = ("Mia", "Omar", "Lena", "Kofi", "Ana", "Ravi")
IMAGE_SIZE = 64


def _jitter(rgb: tuple[int, int, int], rng: random.Random, spread: int = 20) -> tuple[int, int, int]:
    return tuple(min(255, max(0, c + rng.randint(-spread, spread))) for c in rgb)  # type: ignore[return-value]


def _square(colour: str, rng: random.Random) -> Image.Image:
    """A square of `colour` (side 24-40 px, anywhere) on a light, slightly tinted background."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), _jitter((235, 235, 230), rng, 12))
    side = rng.randint(24, 40)
    x, y = rng.randint(0, IMAGE_SIZE - side), rng.randint(0, IMAGE_SIZE - side)
    ImageDraw.Draw(image).rectangle([x, y, x + side - 1, y + side - 1], fill=_jitter(COLOURS[colour], rng))
    return image


def _map(colour: str, rng: random.Random) -> Image.Image:
    """A 4 x 4 grid of grey "states" on a beige map, one large state (2 x 2 cells) highlighted in `colour`."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), _jitter((225, 215, 190), rng, 10))
    pen = ImageDraw.Draw(image)
    cell = IMAGE_SIZE // 4
    for row in range(4):
        for col in range(4):
            pen.rectangle([col * cell + 1, row * cell + 1, (col + 1) * cell - 2, (row + 1) * cell - 2],
                          fill=_jitter((170, 170, 170), rng, 15))  # fmt: skip
    row, col = rng.randint(0, 2), rng.randint(0, 2)
    box = [col * cell + 1, row * cell + 1, (col + 2) * cell - 2, (row + 2) * cell - 2]
    pen.rectangle(box, fill=_jitter(COLOURS[colour], rng))
    return image


def _problem(i: int, rng: random.Random) -> tuple[dict[str, Any], Image.Image | None]:
    kind = i % 4
    base: dict[str, Any] = {"task": "closed choice", "image": None, "hint": ""}
    image = None
    if kind == 0:
        colour = rng.choice(SQUARE_CHOICES)
        image = _square(colour, rng)
        base |= {
            "question": "Which color is the square in the picture?",
            "choices": list(SQUARE_CHOICES),
            "answer": SQUARE_CHOICES.index(colour),
            "subject": "natural science",
            "grade": "grade3",
            "topic": "colors",
            "category": "Identify colors",
            "skill": "Identify colors in a picture",
            "lecture": "Objects reflect some colors of light. The color we see is the light they reflect.",
            "solution": f"Look at the picture. The square is {colour}.",
        }
    elif kind == 1:
        colour = rng.choice(MAP_CHOICES)
        image = _map(colour, rng)
        base |= {
            "question": "Which color is the highlighted state on the map?",
            "hint": "The map shows one highlighted state.",
            "choices": list(MAP_CHOICES),
            "answer": MAP_CHOICES.index(colour),
            "subject": "social science",
            "grade": "grade8",
            "topic": "geography",
            "category": "Read maps",
            "skill": "Read a highlighted map",
            "lecture": "Maps use colors to highlight places.",
            "solution": f"The highlighted state is {colour}.",
        }
    elif kind == 2:
        group = rng.choice(WORD_CHOICES)
        word = rng.choice(WORDS[group])
        base |= {
            "question": f"Which kind of word is {word}?",
            "choices": list(WORD_CHOICES),
            "answer": WORD_CHOICES.index(group),
            "subject": "language science",
            "grade": "grade5",
            "topic": "vocabulary",
            "category": "Word meaning",
            "skill": "Sort words by meaning",
            "lecture": "Words can be sorted by what they name: a color, a shape or a number.",
            "solution": f"The word {word} names {group}.",
        }
    else:
        colour, name = rng.choice(FENCE_CHOICES), rng.choice(NAMES)
        base |= {
            "question": f"What color is {name}'s fence?",
            "hint": f"{name} painted the fence {colour} last summer.",
            "choices": list(FENCE_CHOICES),
            "answer": FENCE_CHOICES.index(colour),
            "subject": "natural science",
            "grade": "grade10",
            "topic": "reading",
            "category": "Use context",
            "skill": "Find facts in a text",
            "lecture": "A text can tell you facts that a picture does not show.",
            "solution": f"The text says the fence is {colour}.",
        }
    if image is not None:
        base["image"] = "image.png"
    return base, image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("question", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.int8()),
            *[(k, pa.string()) for k in ("hint", "task", "grade", "subject", "topic", "category", "skill")],
            ("lecture", pa.string()),
            ("solution", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def build_synthetic_scienceqa(
    root: str | Path,
    *,
    n_train: int = 40,
    n_val: int = 8,
    n_test: int = 16,
    seed: int = 0,
    layout: Literal["lupantech", "parquet"] = "lupantech",
) -> Path:
    """Write a small ScienceQA-shaped data set under `root` and return `root`.

    Args:
        root (`str | Path`): the folder to write into (created if needed).
        n_train (`int`, defaults to `40`): problems in the `train` split.
        n_val (`int`, defaults to `8`): problems in the `val` split (`validation` in the parquet layout).
        n_test (`int`, defaults to `16`): problems in the `test` split.
        seed (`int`, defaults to `0`): seeds every choice made.
        layout (`"lupantech" | "parquet"`, defaults to `"lupantech"`): which file layout to write.
    """
    root = Path(root)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    problems: dict[str, dict[str, Any]] = {}
    images: dict[str, Image.Image | None] = {}
    splits: dict[str, list[str]] = {}
    i = 0
    for split, size in sizes.items():
        splits[split] = []
        rng = random.Random(f"scienceqa-synthetic-{split}-{seed}")
        for index in range(size):
            problem, image = _problem(index, rng)
            pid = str(i + 1)
            problems[pid] = problem | {"split": split}
            images[pid] = image
            splits[split].append(pid)
            i += 1
    if layout == "lupantech":
        for pid, image in images.items():
            if image is not None:
                with atomic_path(root / "images" / problems[pid]["split"] / pid / "image.png") as tmp:
                    tmp.write_bytes(_png(image))
        write_json(root / "problems.json", problems)
        write_json(root / "pid_splits.json", splits)
    elif layout == "parquet":
        for split, pids in splits.items():
            rows = []
            for pid in pids:
                row = {k: v for k, v in problems[pid].items() if k != "split"}
                image = images[pid]
                row["image"] = None if image is None else {"bytes": _png(image), "path": f"{pid}.png"}
                rows.append(row)
            hf_split = "validation" if split == "val" else split
            _write_parquet(root / "data" / f"{hf_split}-00000-of-00001.parquet", rows)
    else:
        raise ValueError(f"unknown layout {layout!r} (use 'lupantech' or 'parquet')")
    return root


def synthetic_context(n_train: int, n_test: int, ctx: SourceContext) -> tuple[str, SourceContext]:
    """Build the synthetic set under `ctx.output_dir` (deterministic in `ctx.seed`) and return where to read it."""
    folder = f"scienceqa_synthetic_{n_train}_{n_test}_{ctx.seed}"
    build_synthetic_scienceqa(ctx.output_dir / folder, n_train=n_train, n_val=0, n_test=n_test, seed=ctx.seed)
    return folder, SourceContext(data_root=ctx.output_dir, output_dir=ctx.output_dir, seed=ctx.seed)
