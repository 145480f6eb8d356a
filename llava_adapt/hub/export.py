"""Merge a run's trained model into a full model that stock transformers loads (and servers such as vLLM serve).

The run's model folder (`finetune/` when the recipe fine-tunes on a benchmark, else `instruct/`) holds either a PEFT
adapter, whose `adapter_config.json` names its base (`base_model_name_or_path`: a
local folder or a Hub id), or a full model. An adapter is applied to its base with
`PeftModel.from_pretrained(...).merge_and_unload()`; the trained projector, stored in full in the adapter
(`modules_to_save`), replaces the base's. The result is saved as safetensors with the processor of that folder,
so `AutoModelForImageTextToText` + `AutoProcessor` load the folder with no llava-adapt or PEFT involved.

transformers and PEFT are imported inside the functions, so that the CLI starts fast.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import hub_id, load_run
from llava_adapt.run.atomic import atomic_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def resolve_base(reference: str | None, run_dir: Path, adapter_dir: Path) -> str:
    """Find the base model an adapter names.

    A relative folder is looked up against the run directory, the adapter folder and the working directory, in
    that order. An absolute folder that no longer exists (the run directory was moved) is looked up by its last one
    or two components in the run directory (`align/`, `instruct/base/`). A reference that is no existing folder but
    a valid Hub id is returned as is (it will download).

    Args:
        reference (`str`, *optional*): `base_model_name_or_path` of the adapter config.
        run_dir (`Path`): the run directory.
        adapter_dir (`Path`): the adapter folder.

    Raises:
        PublishError: the reference is empty, or a folder that does not exist and no Hub id.
    """
    if not reference:
        raise PublishError(f"{adapter_dir / 'adapter_config.json'} names no base model (base_model_name_or_path)")
    path = Path(reference).expanduser()
    if path.is_absolute():
        # A run directory that was moved: `align/` or `instruct/base/` of the old location -> of this one.
        candidates = [path, run_dir / path.name, run_dir / Path(*path.parts[-2:])]
    else:
        candidates = [run_dir / path, adapter_dir / path, path]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return str(candidate)
    if hub_id(reference) == reference:
        return reference
    raise PublishError(
        f"the adapter's base model {reference!r} (base_model_name_or_path in {adapter_dir / 'adapter_config.json'}) "
        "is not a model folder; restore it or rerun the stage that trained the adapter"
    )


def load_merged(model_dir: Path, run_dir: Path, dtype: str = "auto") -> PreTrainedModel:
    """Load a trained model as one plain `LlavaForConditionalGeneration` (adapter merged into its base).

    Args:
        model_dir (`Path`): the adapter or full-model folder (e.g. `instruct/` or `finetune/`).
        run_dir (`Path`): the run directory (relative base paths are resolved against it).
        dtype (`str`, defaults to `"auto"`): the dtype to load in; `"auto"` keeps the saved one.
    """
    from transformers import AutoModelForImageTextToText

    adapter_config = model_dir / "adapter_config.json"
    if not adapter_config.is_file():
        return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype)
    from peft import PeftModel

    base_ref = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    base_path = resolve_base(base_ref, run_dir, model_dir)
    logger.info("merging the adapter in %s into its base %s", model_dir, base_path)
    base = AutoModelForImageTextToText.from_pretrained(base_path, dtype=dtype)
    return PeftModel.from_pretrained(base, model_dir).merge_and_unload()


def export_merged(run_dir: str | Path, out_dir: str | Path, dtype: str = "auto") -> Path:
    """Write the run's final model (`finetune/` or `instruct/`), merged, as a stock transformers folder.

    The folder is written atomically: until it is complete, `out_dir` keeps what it held before (or does not
    exist). It contains `config.json`, `generation_config.json`, `model.safetensors` (or shards) and the processor
    (`processor_config.json`, tokenizer files, `chat_template.jinja`, and the transformers 4.x
    `preprocessor_config.json` and `chat_template.json`).

    Args:
        run_dir (`str | Path`): a run directory whose `instruct` (or, when it runs it, `finetune`) stage completed.
        out_dir (`str | Path`): the folder to write; replaced if it exists.
        dtype (`str`, defaults to `"auto"`): the dtype of the saved weights; `"auto"` keeps the trained one.

    Returns:
        `out_dir` as a `Path`.

    Raises:
        PublishError: the run's model stage has not completed, or the adapter's base cannot be found.
    """
    from transformers import AutoProcessor

    run = load_run(run_dir)
    model = load_merged(run.model_dir, run.layout.root, dtype=dtype)
    processor = AutoProcessor.from_pretrained(run.model_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_legacy_processor_files(processor, Path(tmp))
    logger.info("wrote the merged model to %s", out_dir)
    return Path(out_dir)


def write_legacy_processor_files(processor, folder: Path) -> None:
    """Also write the processor files of the transformers 4.x layout next to transformers 5's.

    transformers 5 saves the image-processor settings inside `processor_config.json` and the chat template as
    `chat_template.jinja`; serving stacks still on transformers 4.x (older vLLM and SGLang images) read
    `preprocessor_config.json` and `chat_template.json` instead, as llava-hf's own repositories ship them.
    transformers 5 reads either layout, so both are written. `tokenizer_config.json` is made readable by both: a
    `TokenizersBackend` class becomes `PreTrainedTokenizerFast` (the same class under its 4.x name) and a list of
    `extra_special_tokens` becomes `additional_special_tokens` (4.x expects a dict under the former name).
    Checked by hand with transformers 4.57: `AutoProcessor` loads the folder and encodes an image prompt to the
    same ids as transformers 5.

    Args:
        processor (`ProcessorMixin`): the model's processor (a `LlavaProcessor`).
        folder (`Path`): the model folder `processor.save_pretrained` wrote.
    """
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        (folder / "preprocessor_config.json").write_text(image_processor.to_json_string(), encoding="utf-8")
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        if settings.get("tokenizer_class") == "TokenizersBackend":
            settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        if isinstance(settings.get("extra_special_tokens"), list):
            extra = settings.pop("extra_special_tokens")
            settings["additional_special_tokens"] = settings.get("additional_special_tokens", []) + extra
        tokenizer_config.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if getattr(processor, "chat_template", None):
        (folder / "chat_template.json").write_text(
            json.dumps({"chat_template": processor.chat_template}, indent=2) + "\n", encoding="utf-8"
        )
