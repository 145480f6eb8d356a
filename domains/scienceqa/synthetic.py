"""A tiny ScienceQA-shaped data set, built in code: for the tests and the offline `tiny` preset.

`build_synthetic_scienceqa` writes the same files the real data comes in — `problems.json` + `pid_splits.json` +
`images/<split>/<pid>/image.png` (lupantech layout), or `data/{train,validation,test}-00000-of-00001.parquet`
(the Hugging Face layout) — with problems that a small model can learn, and that fill every category the metrics
report. Four kinds of problem take turns:

| kind | subject | grade | hint | image | the answer is in |
|---|---|---|---|---|---|
| colour of the square | natural science | grade3 | no | yes | the image |
| colour on the map | social science | grade8 | yes | yes | the image |
| which word is a colour | language science | grade5 | no | no | the question's choices |
| colour of the fence | natural science | grade10 | yes | no | the hint |

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

from PIL import Image

from llava_adapt.plugin import SourceContext, atomic_path, write_json

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 170),
}
OTHER_WORDS = ("table", "river", "happy", "seven", "quickly", "pencil")
IMAGE_SIZE = 32


def _problem(i: int, rng: random.Random) -> tuple[dict[str, Any], tuple[int, int, int] | None]:
    kind = i % 4
    colour = rng.choice(sorted(COLOURS))
    n = rng.randint(2, 4)
    if kind == 2:
        choices = [colour, *rng.sample(OTHER_WORDS, n - 1)]
    else:
        choices = [colour, *rng.sample(sorted(set(COLOURS) - {colour}), n - 1)]
    rng.shuffle(choices)
    base = {"choices": choices, "answer": choices.index(colour), "task": "closed choice", "image": None, "hint": ""}
    if kind == 0:
        base |= {
            "question": "Which color is the square in the picture?",
            "subject": "natural science",
            "grade": "grade3",
            "topic": "colors",
            "category": "Identify colors",
            "skill": "Identify colors in a picture",
            "lecture": "Objects reflect some colors of light. The color we see is the light they reflect.",
            "solution": f"Look at the picture. The square is {colour}.",
        }
    elif kind == 1:
        base |= {
            "question": "Which color is the highlighted state on the map?",
            "hint": "The map shows one highlighted state.",
            "subject": "social science",
            "grade": "grade8",
            "topic": "geography",
            "category": "Read maps",
            "skill": "Read a highlighted map",
            "lecture": "Maps use colors to highlight places.",
            "solution": f"The highlighted state is {colour}.",
        }
    elif kind == 2:
        base |= {
            "question": "Which word names a color?",
            "subject": "language science",
            "grade": "grade5",
            "topic": "vocabulary",
            "category": "Word meaning",
            "skill": "Identify color words",
            "lecture": "Some words name colors, such as red or blue.",
            "solution": f"The word {colour} names a color.",
        }
    else:
        name = rng.choice(["Mia", "Omar", "Lena", "Kofi"])
        base |= {
            "question": f"What color is {name}'s fence?",
            "hint": f"{name} painted the fence {colour} last summer.",
            "subject": "natural science",
            "grade": "grade10",
            "topic": "reading",
            "category": "Use context",
            "skill": "Find facts in a text",
            "lecture": "A text can tell you facts that a picture does not show.",
            "solution": f"The text says the fence is {colour}.",
        }
    rgb = COLOURS[colour] if kind in (0, 1) else None
    if rgb is not None:
        base["image"] = "image.png"
    return base, rgb


def _png(rgb: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), rgb).save(buffer, format="PNG")
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
    colours: dict[str, tuple[int, int, int] | None] = {}
    splits: dict[str, list[str]] = {}
    i = 0
    for split, size in sizes.items():
        splits[split] = []
        rng = random.Random(f"scienceqa-synthetic-{split}-{seed}")
        for index in range(size):
            problem, rgb = _problem(index, rng)
            pid = str(i + 1)
            problems[pid] = problem | {"split": split}
            colours[pid] = rgb
            splits[split].append(pid)
            i += 1
    if layout == "lupantech":
        for pid, rgb in colours.items():
            if rgb is not None:
                with atomic_path(root / "images" / problems[pid]["split"] / pid / "image.png") as tmp:
                    tmp.write_bytes(_png(rgb))
        write_json(root / "problems.json", problems)
        write_json(root / "pid_splits.json", splits)
    elif layout == "parquet":
        for split, pids in splits.items():
            rows = []
            for pid in pids:
                row = {k: v for k, v in problems[pid].items() if k != "split"}
                rgb = colours[pid]
                row["image"] = None if rgb is None else {"bytes": _png(rgb), "path": f"{pid}.png"}
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
