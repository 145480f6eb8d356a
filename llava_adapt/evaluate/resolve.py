"""Turn what a user names on the command line into a model and processor ready for inference.

`MODEL_OR_RUN_DIR` of `llava-adapt eval` and `llava-adapt chat` may be:

- a run directory (it has `manifest.json`): its final model, `finetune/` when the recipe fine-tunes on a benchmark,
  else `instruct/` (an adapter merged into its base, or the full model), once that stage completed;
- a PEFT adapter folder (`adapter_config.json`): merged into the base it names;
- a model folder in llava-hf layout (`config.json`), e.g. what `llava-adapt export --merged` writes;
- a Hub id of a stock llava-hf checkpoint (e.g. `llava-hf/llava-1.5-7b-hf`), for a baseline row.

Folders are loaded by the one loader of trained models (`llava_adapt.model.load.load_trained`, the evaluate stage's
too): a run's model in the recipe's `model.dtype`, so `llava-adapt eval RUN_DIR` scores the same weights as the run's
own evaluation. The processor is the one saved next to the weights (an adapter without one uses its base's); a
processor whose chat template lacks what llava-adapt needs gets a built-in format, as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel, ProcessorMixin

from llava_adapt.errors import InputError
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import RunInfo, hub_id, load_run
from llava_adapt.model.aspect import set_image_aspect_ratio
from llava_adapt.model.load import MissingBaseError, load_trained, prepare_chat_format, resolve_dtype


class ModelResolveError(InputError, ValueError):
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


def _run_dtype(run: RunInfo, dtype: str) -> torch.dtype | str:
    """The dtype a run's model loads in: the recipe's `model.dtype` (as the evaluate stage loads it) unless the caller
    names one."""
    return resolve_dtype(run.recipe.model.dtype) if dtype == "auto" else dtype


def resolve_model(
    model_or_run_dir: str | Path, dtype: str = "auto", device: str | None = None, image_aspect_ratio: str | None = None
) -> ResolvedModel:
    """Load the model that `model_or_run_dir` names (see the module docstring for what it may be).

    Args:
        model_or_run_dir (`str | Path`): a run directory, a PEFT adapter folder, a model folder or a Hub id.
        dtype (`str`, defaults to `"auto"`): weights dtype: `"auto"` = a run's recipe `model.dtype` as the evaluate
            stage loads it (bf16 on a GPU that supports it, else fp32), for any other folder or Hub id the saved
            dtype; else a name such as `"bfloat16"`.
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
            model, processor = load_trained(
                run.model_dir, _run_dtype(run, dtype), run.recipe.model.attn_implementation, run.layout.root
            )
        elif path.is_dir() and (path / "adapter_config.json").is_file():
            kind = "adapter"
            model, processor = load_trained(path, dtype, search_root=path.parent)
        elif path.is_dir() and (path / "config.json").is_file():
            kind = "model"
            model, processor = load_trained(path, dtype)
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
    except (PublishError, MissingBaseError) as exc:
        raise ModelResolveError(str(exc)) from None
    prepare_chat_format(model, processor)
    if image_aspect_ratio is not None:
        set_image_aspect_ratio(processor, image_aspect_ratio)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return ResolvedModel(model=model, processor=processor, kind=kind, name=name, run=run)
