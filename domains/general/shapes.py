"""Synthetic shapes: one coloured circle, square or triangle in a quadrant of a noisy background.

The offline data of the `general` domain. Every image is drawn from its own seed, so the same arguments give the
same images on every machine, and a benchmark drawn with another `seed_offset` is held out from training.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field

from llava_adapt.plugin import CaptionRecord, SourceContext

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 75, 215),
    "yellow": (230, 205, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
POSITIONS: dict[str, tuple[int, int]] = {"upper left": (0, 0), "upper right": (1, 0), "lower left": (0, 1),
                                         "lower right": (1, 1)}  # fmt: skip
BACKGROUNDS: dict[str, tuple[int, int]] = {"dark": (40, 80), "gray": (90, 150), "light": (160, 215)}  # level range
OPPOSITE = {"upper left": "lower right", "upper right": "lower left", "lower left": "upper right",
            "lower right": "upper left"}  # fmt: skip


class ShapesArgs(BaseModel):
    """Arguments of the `shapes` source and benchmark."""

    model_config = ConfigDict(extra="forbid")

    num_images: int = Field(200, ge=1)  # how many images to draw
    image_size: int = Field(64, ge=16)  # pixels per side
    seed_offset: int = 0  # added to the recipe seed; a benchmark uses another offset to stay held out


@dataclass(frozen=True)
class Drawn:
    """What was drawn: labels and the normalised box `[x1, y1, x2, y2]`."""

    color: str
    shape: str
    position: str
    background: str
    box: tuple[float, float, float, float]

    def caption(self) -> str:
        return f"A {self.color} {self.shape} in the {self.position} of a noisy {self.background} background."

    def labels(self) -> dict[str, str]:
        return {"color": self.color, "shape": self.shape, "position": self.position, "background": self.background}


def draw(seed: str, size: int) -> tuple[Image.Image, Drawn]:
    """Draw one image from a string seed (colour, shape, quadrant and background chosen uniformly).

    Args:
        seed (`str`): the image's seed.
        size (`int`): side length in pixels.
    """
    rng = random.Random(seed)
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    position, background = rng.choice(list(POSITIONS)), rng.choice(list(BACKGROUNDS))
    noise = np.random.default_rng(rng.getrandbits(64))
    level = rng.randint(*BACKGROUNDS[background])
    pixels = level + noise.normal(0, 18, (size, size, 3)) + noise.normal(0, 12, (1, 1, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    side = rng.uniform(0.36, 0.46) * size
    qx, qy = POSITIONS[position]
    x0 = qx * size / 2 + rng.uniform(0.02 * size, size / 2 - side - 0.02 * size)
    y0 = qy * size / 2 + rng.uniform(0.02 * size, size / 2 - side - 0.02 * size)
    x1, y1 = x0 + side, y0 + side
    fill = tuple(int(np.clip(c + rng.randint(-12, 12), 0, 255)) for c in COLORS[color])
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        pen.rectangle((x0, y0, x1, y1), fill=fill)
    else:
        pen.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    box = tuple(round(v / size, 3) for v in (x0, y0, x1, y1))
    return image, Drawn(color, shape, position, background, box)


def generate(args: ShapesArgs, ctx: SourceContext, prefix: str) -> Iterator[tuple[str, str, Drawn]]:
    """Draw `args.num_images` images into `ctx.output_dir`; yield `(id, file name, what was drawn)`."""
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    for i in range(args.num_images):
        image_id = f"{prefix}_{i:05d}"
        image, drawn = draw(f"{ctx.seed + args.seed_offset}:{i}", args.image_size)
        name = f"{image_id}.png"
        image.save(ctx.output_dir / name)
        yield image_id, name, drawn


def count_source(args: ShapesArgs, ctx: SourceContext) -> int:
    """The records `load_source` yields: one per drawn image."""
    return args.num_images


def load_source(args: ShapesArgs, ctx: SourceContext) -> Iterator[CaptionRecord]:
    """The `shapes` source: image–caption records with labels and the shape's box as allow-listed context."""
    for image_id, name, drawn in generate(args, ctx, "shape"):
        box = ", ".join(f"{v:.3f}" for v in drawn.box)
        yield CaptionRecord(
            id=image_id,
            image=name,
            caption=drawn.caption(),
            context={"boxes": f"{drawn.color} {drawn.shape}: [{box}]"},
            labels=drawn.labels(),
        )
