"""Turn what a user names on the command line into a model and processor ready for inference.

`MODEL_OR_RUN_DIR` of `llava-adapt eval` and `llava-adapt chat` may be:

- a run directory (it has `manifest.json`): its final model, `finetune/` when the recipe fine-tunes on a benchmark,
  else `instruct/` (an adapter merged into its base, or the full model), once that stage completed;
- a PEFT adapter folder (`adapter_config.json`): merged into the base it names;
- a model folder in llava-hf layout (`config.json`), e.g. what `llava-adapt export --merged` writes;
- a Hub id of a stock llava-hf checkpoint (e.g. `llava-hf/llava-1.5-7b-hf`), for a baseline row.

The processor is the one saved next to the weights (an adapter without one uses its base's); a processor whose chat
template lacks what llava-adapt needs gets LLaVA-1.5's, as in training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel, ProcessorMixin

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.export import load_merged, resolve_base
from llava_adapt.hub.run_info import RunInfo, hub_id, load_run
from llava_adapt.model.aspect import set_image_aspect_ratio
from llava_adapt.model.load import prepare_chat_format

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


class ModelResolveError(LlavaAdaptError, ValueError):
    """`MODEL_OR_RUN_DIR` names nothing that can be loaded; the message says what to pass instead."""


@dataclass
class ResolvedModel:
    """A model ready for inference and where it came from.

    Args:
        model (`PreTrainedModel`): the LLaVA model, in eval mode, on `device`.
        processor (`ProcessorMixin`): its processor.
        kind (`str`): `"run"`, `"adapter"`, `"model"` or `"hub"`.
        name (`str`): what the user passed.
        run (`RunInfo`, *optional*): the checked run directory when `kind == "run"` (its recipe gives defaults).
    """

    model: PreTrainedModel
    processor: ProcessorMixin
    kind: str
    name: str
    run: RunInfo | None = None


def _has_processor(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROCESSOR_FILES)


def _load_folder(folder: Path, search_root: Path, dtype: str) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Load a model or adapter folder; an adapter's base is looked up as `llava-adapt export` does."""
    model = load_merged(folder, search_root, dtype=dtype)
    processor_dir: str | Path = folder
    if not _has_processor(folder):
        if not (folder / "adapter_config.json").is_file():
            raise ModelResolveError(f"{folder} has no processor (processor_config.json); save the processor with it")
        reference = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        processor_dir = resolve_base(reference.get("base_model_name_or_path"), search_root, folder)
    return model, AutoProcessor.from_pretrained(processor_dir)


def resolve_model(
    model_or_run_dir: str | Path, dtype: str = "auto", device: str | None = None, image_aspect_ratio: str | None = None
) -> ResolvedModel:
    """Load the model that `model_or_run_dir` names (see the module docstring for what it may be).

    Args:
        model_or_run_dir (`str | Path`): a run directory, a PEFT adapter folder, a model folder or a Hub id.
        dtype (`str`, defaults to `"auto"`): weights dtype (`"auto"` keeps the saved one, else e.g. `"bfloat16"`).
        device (`str`, *optional*): where to put the model; defaults to `"cuda"` when available, else `"cpu"`.
        image_aspect_ratio (`"pad" | "crop"`, *optional*): pad images to a square (LLaVA-1.5's evaluation) or
            centre-crop them; `None` keeps what the saved processor does.

    Raises:
        ModelResolveError: the path does not exist, is none of the four kinds, or is a run directory whose model
            stage (`instruct`, or `finetune` when it runs it) has not completed (the message says which stage to run).
    """
    name = str(model_or_run_dir)
    path = Path(name).expanduser()
    run: RunInfo | None = None
    try:
        if path.is_dir() and (path / "manifest.json").is_file():
            run = load_run(path)
            kind = "run"
            model, processor = _load_folder(run.model_dir, run.layout.root, dtype)
        elif path.is_dir() and (path / "adapter_config.json").is_file():
            kind = "adapter"
            model, processor = _load_folder(path, path.parent, dtype)
        elif path.is_dir() and (path / "config.json").is_file():
            kind = "model"
            model, processor = _load_folder(path, path.parent, dtype)
        elif path.is_dir():
            raise ModelResolveError(
                f"{path} is neither a run directory (manifest.json), a PEFT adapter (adapter_config.json) nor a "
                "model folder (config.json)"
            )
        elif path.exists() or hub_id(name) != name:
            raise ModelResolveError(f"{name} does not exist (expected a run directory, a model folder or a Hub id)")
        else:
            kind = "hub"
            try:
                model = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype)
                processor = AutoProcessor.from_pretrained(name)
            except OSError as exc:
                raise ModelResolveError(
                    f"{name!r} is no local folder, and loading it as a Hub id failed: {exc}"
                ) from None
    except PublishError as exc:
        raise ModelResolveError(str(exc)) from None
    prepare_chat_format(model, processor)
    if image_aspect_ratio is not None:
        set_image_aspect_ratio(processor, image_aspect_ratio)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return ResolvedModel(model=model, processor=processor, kind=kind, name=name, run=run)
