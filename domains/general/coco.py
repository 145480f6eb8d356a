"""Source `coco`: COCO captions and boxes, the context LLaVA's GPT-4 teacher saw when it wrote LLaVA-Instruct.

Reads the files COCO publishes (relative to the data root):

- `annotations/captions_{split}{year}.json`: `images: [{id, file_name, width, height}]` and
  `annotations: [{image_id, caption}]` (about five captions per image);
- `annotations/instances_{split}{year}.json` (when `with_boxes`): `categories: [{id, name}]` and
  `annotations: [{image_id, category_id, bbox: [x, y, width, height]}]` in pixels;
- the images under `{split}{year}/`.

One record per image. Its context is what LLaVA's prompts give the teacher (`playground/data/prompts/*/000_caps.txt`):
`captions` holds all the image's captions, one per line, and `boxes` one line per object, `name: [x1, y1, x2, y2]`,
the corners normalised by the image's width and height, 3 decimals, clamped to [0, 1]
(`person: [0.681, 0.242, 0.774, 0.694]`); the domain's `build_context` puts the captions, a blank line, then the
boxes, as LLaVA did. The record's `caption` (what stage 1 trains on) is the image's first caption in the file:
LLaVA's stage 1 trains on one caption per image, and `generate` still sees all of them.

Captions and boxes keep their order in the files. Skipped and counted, with these reasons: an image without
captions (`"no captions"`); one with a malformed box or a box of unknown category (`"malformed box annotation"`,
`"unknown category id"`: its box list would be incomplete); one with boxes but no size to normalise them by
(`"missing image size"`); one whose path escapes the data root; a malformed or repeated image entry
(`"malformed image entry"`, `"duplicate image id"`); a malformed or empty caption (`"malformed caption
annotation"`, `"empty caption"`); an annotation of an image the captions file does not list (`"caption for unknown
image id"`, `"box for unknown image id"`). Instances of another split than the captions (no box matches any image)
stop the run. Both files are read whole, as `pycocotools` reads them (`instances_train2017.json` needs a few GB of
memory). Whether each image exists and decodes is checked by `prepare`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llava_adapt.plugin import CaptionRecord, DataError, RecordFileError, Skip, SourceContext, read_json

from .paths import ESCAPES, image_path, input_path


class CocoArgs(BaseModel):
    """Arguments of the `coco` source (recipe `data.args`).

    Args:
        split (`"train" | "val"`, defaults to `"train"`): the COCO split; it names the default files and folder.
        year (`2014 | 2017`, defaults to `2017`): the COCO release; it names the default files and folder.
        annotations (`str | None`, defaults to `None`): the captions file, relative to the data root;
            `None` = `annotations/captions_{split}{year}.json`.
        instances (`str | None`, defaults to `None`): the instances (boxes) file, relative to the data root;
            `None` = `annotations/instances_{split}{year}.json`. Read only when `with_boxes`.
        image_dir (`str | None`, defaults to `None`): the folder of the images, relative to the data root;
            `None` = `{split}{year}`.
        with_boxes (`bool`, defaults to `True`): give the teacher the objects' boxes (LLaVA's detailed description
            and complex reasoning prompts use them); `False` = captions only, no instances file needed.
        limit (`int | None`, defaults to `None`): stop after this many records, in the captions file's image order.
    """

    model_config = ConfigDict(extra="forbid")

    split: Literal["train", "val"] = "train"
    year: Literal[2014, 2017] = 2017
    annotations: str | None = None
    instances: str | None = None
    image_dir: str | None = None
    with_boxes: bool = True
    limit: int | None = Field(None, ge=1)

    def captions_file(self) -> str:
        return self.annotations or f"annotations/captions_{self.split}{self.year}.json"

    def instances_file(self) -> str:
        return self.instances or f"annotations/instances_{self.split}{self.year}.json"

    def images_folder(self) -> str:
        return self.image_dir or f"{self.split}{self.year}"


_ENTRY = ConfigDict(extra="ignore", strict=True)  # COCO entries carry more fields (coco_url, segmentation, ...)


class CocoImage(BaseModel):
    """One entry of a COCO file's `images`."""

    model_config = _ENTRY

    id: int
    file_name: str = Field(min_length=1)
    width: int | None = Field(None, gt=0)
    height: int | None = Field(None, gt=0)


class CocoCaption(BaseModel):
    """One entry of a captions file's `annotations`."""

    model_config = _ENTRY

    image_id: int
    caption: str


class CocoBox(BaseModel):
    """One entry of an instances file's `annotations`: `bbox` is `[x, y, width, height]` in pixels."""

    model_config = _ENTRY

    image_id: int
    category_id: int
    bbox: Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=4, max_length=4)]

    @model_validator(mode="after")
    def _non_negative_size(self) -> CocoBox:
        if self.bbox[2] < 0 or self.bbox[3] < 0:
            raise ValueError("negative box width or height")
        return self


class CocoCategory(BaseModel):
    """One entry of an instances file's `categories`."""

    model_config = _ENTRY

    id: int
    name: str = Field(min_length=1)


def box_line(name: str, bbox: list[float], width: int, height: int) -> str:
    """One object as LLaVA's prompts list it: `name: [x1, y1, x2, y2]`, normalised, 3 decimals.

    Args:
        name (`str`): the object's category name.
        bbox (`list[float]`): COCO's `[x, y, width, height]` in pixels.
        width (`int`): the image's width in pixels.
        height (`int`): the image's height in pixels.
    """
    x, y, w, h = bbox
    corners = (x / width, y / height, (x + w) / width, (y + h) / height)
    return f"{name}: [{', '.join(f'{min(max(v, 0.0), 1.0):.3f}' for v in corners)}]"


def load(args: CocoArgs, ctx: SourceContext) -> Iterator[CaptionRecord | Skip]:
    """Yield one `CaptionRecord` per COCO image (see the module docstring), a `Skip` for what cannot be used.

    Args:
        args (`CocoArgs`): the source's arguments.
        ctx (`SourceContext`): the data root the paths are relative to.

    Raises:
        ValueError: a file or the image folder is outside the data root, a file is not a COCO annotation file of
            its kind (`RecordFileError`, naming the file), or the instances file describes other images than the
            captions file.
        FileNotFoundError: a file or the image folder does not exist (the message names it and the data root).
    """
    captions_path = input_path(ctx.data_root, args.captions_file(), "COCO captions file")
    instances_path = None
    if args.with_boxes:
        instances_path = input_path(
            ctx.data_root, args.instances_file(), "COCO instances file (set with_boxes: false for captions only)"
        )
    image_dir = input_path(ctx.data_root, args.images_folder(), "COCO image folder", kind="folder")

    images: dict[int, CocoImage] = {}
    captions: dict[int, list[str]] = {}
    yield from _captions(captions_path, images, captions)
    boxes: dict[int, list[str]] = {}
    problems: dict[int, str] = {}
    if instances_path is not None:
        yield from _boxes(instances_path, images, boxes, problems)

    root = ctx.data_root
    count = 0
    for image_id, image in images.items():
        if image_id in problems:
            yield Skip(str(image_id), problems[image_id])
            continue
        if not captions[image_id]:
            yield Skip(str(image_id), "no captions")
            continue
        stored = image_path(root, image_dir, image.file_name)
        if stored is None:
            yield Skip(str(image_id), ESCAPES)
            continue
        context = {"captions": "\n".join(captions[image_id])}
        if boxes.get(image_id):
            context["boxes"] = "\n".join(boxes[image_id])
        yield CaptionRecord(id=str(image_id), image=stored, caption=captions[image_id][0], context=context)
        count += 1
        if args.limit is not None and count >= args.limit:
            return


def _captions(path: Path, images: dict[int, CocoImage], captions: dict[int, list[str]]) -> Iterator[Skip]:
    """Fill `images` (id -> entry, file order) and `captions` (image id -> captions, file order) from a captions
    file; yield a `Skip` for each entry that cannot be used."""
    data = _read(path, ("images", "annotations"))
    for index, raw in enumerate(data["images"]):
        try:
            image = CocoImage.model_validate(raw)
        except ValidationError:
            yield Skip(_name(raw, "id", f"images[{index}]"), "malformed image entry")
            continue
        if image.id in images:
            yield Skip(str(image.id), "duplicate image id")
            continue
        images[image.id] = image
        captions[image.id] = []
    for index, raw in enumerate(data["annotations"]):
        try:
            annotation = CocoCaption.model_validate(raw)
        except ValidationError:
            yield Skip(_name(raw, "id", f"annotations[{index}]"), "malformed caption annotation")
            continue
        if annotation.image_id not in captions:
            yield Skip(_name(raw, "id", f"annotations[{index}]"), "caption for unknown image id")
            continue
        text = " ".join(annotation.caption.split())  # one line each in the teacher's context
        if not text:
            yield Skip(_name(raw, "id", f"annotations[{index}]"), "empty caption")
            continue
        captions[annotation.image_id].append(text)


def _boxes(
    path: Path, images: dict[int, CocoImage], boxes: dict[int, list[str]], problems: dict[int, str]
) -> Iterator[Skip]:
    """Fill `boxes` (image id -> box lines) and `problems` (image id -> why it is skipped) from an instances file;
    yield a `Skip` for each box of an image the captions file does not list.

    Raises:
        DataError: no box belongs to an image of the captions file (the two files are of different splits).
    """
    data = _read(path, ("categories", "annotations"))
    known = unknown = 0
    names: dict[int, str] = {}
    for index, raw in enumerate(data["categories"]):
        try:
            category = CocoCategory.model_validate(raw)
        except ValidationError as exc:
            raise RecordFileError(f"{path}: categories[{index}] is not a COCO category ({_first(exc)})") from None
        names[category.id] = category.name
    for index, raw in enumerate(data["annotations"]):
        try:
            box = CocoBox.model_validate(raw)
        except ValidationError:
            image_id = raw.get("image_id") if isinstance(raw, dict) else None
            if isinstance(image_id, int) and image_id in images:
                problems.setdefault(image_id, "malformed box annotation")
            else:
                yield Skip(_name(raw, "id", f"annotations[{index}]"), "malformed box annotation")
            continue
        image = images.get(box.image_id)
        if image is None:
            unknown += 1
            yield Skip(_name(raw, "id", f"annotations[{index}]"), "box for unknown image id")
            continue
        known += 1
        if box.category_id not in names:
            problems.setdefault(box.image_id, "unknown category id")
        elif image.width is None or image.height is None:
            problems.setdefault(box.image_id, "missing image size")
        else:
            line = box_line(names[box.category_id], box.bbox, image.width, image.height)
            boxes.setdefault(box.image_id, []).append(line)
    if unknown and not known:
        raise DataError(
            f"none of the {unknown} boxes in {path} belongs to an image of the captions file: are the captions and "
            "instances files of the same split and year?"
        )


def _read(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Read a COCO annotation file and check it has the list-valued `keys`."""
    data = read_json(path)  # not UTF-8, not JSON: an error naming the file
    if not isinstance(data, dict):
        raise RecordFileError(f"{path}: expected a COCO annotation object, got a JSON {type(data).__name__}")
    missing = [key for key in keys if not isinstance(data.get(key), list)]
    if missing:
        raise RecordFileError(
            f"{path}: not a COCO annotation file of this kind: no {' or '.join(repr(k) for k in missing)} list"
        )
    return data


def _name(raw: Any, key: str, fallback: str) -> str:
    """How to name a skipped entry: its own id when it has one, else its position in the file."""
    value = raw.get(key) if isinstance(raw, dict) else None
    return str(value) if value is not None else fallback


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
