"""Tokenizing one training sample into `input_ids` + `labels`, and the sequence-length rule.

The image is not needed to tokenize: the processor replaces each `<image>` with a fixed number of image tokens
(`(size / patch)**2`, +1 CLS −1 for CLIP's "default" strategy), so the text is rendered and tokenized once with a
single placeholder and the placeholder is expanded afterwards. That gives exactly the processor's ids (tested)
without decoding any image, so tokenized samples can be cached and sorted by length before training.

Loss masks (`labels` is `-100` where no loss is taken):
- plain (stage 1): loss on the caption tokens and the end-of-sequence token only;
- chat (stage 2): loss on the tokens inside the chat template's `{% generation %}` blocks (assistant answers and
  their end-of-sequence token); never on the prompt, the role names or the image tokens.

Length rule: a sample longer than `max_length` is truncated at the end, unless the cut would fall inside (or
before) its image tokens, or would leave no loss token at all; such a sample is dropped with a reason.

Samples LLaVA's `preprocess_v1` silently trains on with an all-masked loss (its "tokenization mismatch ... (ignored)"
branch) are dropped here with a counted reason instead: a conversation with an empty or blank turn (`EMPTY_TURN`;
LLaVA renders an empty answer as a generation prompt), and text that spells a special token such as `</s>`
(`SPECIAL_TOKEN_IN_TEXT`; one tokenization of the whole prompt would read it as the real token, teaching an
end-of-sequence in mid-answer). `<unk>` written in text is kept and trained on: the collator builds the attention
mask from the lengths, not by comparing ids with the pad id (LLaVA pads with `unk` and so drops it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image
from transformers import ProcessorMixin

from llava_adapt.train.formats import TrainingSample

IGNORE_INDEX = -100
IMAGE_CUT = "image tokens cut by max_length"
ANSWER_CUT = "answer cut away by max_length"
NO_ANSWER = "no answer tokens"
EMPTY_TURN = "empty turn"
SPECIAL_TOKEN_IN_TEXT = "special token written in text"


@dataclass(frozen=True)
class Tokenized:
    """A tokenized sample.

    Args:
        input_ids (`list[int]`): token ids, image tokens expanded.
        labels (`list[int]`): `input_ids` where the loss is taken, `-100` elsewhere.
        truncated (`bool`): whether the end was cut to fit `max_length`.
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


def image_token_count(processor: ProcessorMixin, image_size: tuple[int, int] | None = None) -> int:
    """How many tokens one `<image>` expands to with this processor (measured on a blank image).

    Args:
        processor (`ProcessorMixin`): the model's processor.
        image_size (`tuple[int, int]`, *optional*): `(width, height)` of the image; defaults to the processor's input
            size. LLaVA-1.5's count is the same for every image; LLaVA-NeXT's and OneVision's any-resolution tiling
            depends on the image's size.
    """
    if image_size is None:
        size = processor.image_processor.crop_size or processor.image_processor.size
        height, width = size.get("height", size.get("shortest_edge")), size.get("width", size.get("shortest_edge"))
        image_size = (width, height)
    encoded = processor(text=processor.image_token, images=[Image.new("RGB", image_size)])
    return list(encoded["input_ids"][0]).count(processor.tokenizer.convert_tokens_to_ids(processor.image_token))


def fit_length(input_ids: list[int], mask: list[int], image_token_id: int, max_length: int | None) -> Tokenized | str:
    """Apply the length rule.

    Args:
        input_ids (`list[int]`): the full token ids.
        mask (`list[int]`): 1 where the loss is taken, else 0.
        image_token_id (`int`): id of the image token.
        max_length (`int | None`): the limit; `None` means no limit.

    Returns:
        The (possibly truncated) `Tokenized` sample, or the reason to drop it (`IMAGE_CUT`, `ANSWER_CUT`,
        `NO_ANSWER`).
    """
    if not any(mask):
        return NO_ANSWER
    truncated = max_length is not None and len(input_ids) > max_length
    if truncated:
        if image_token_id in input_ids[max_length:]:
            return IMAGE_CUT
        if not any(mask[:max_length]):
            return ANSWER_CUT
        input_ids, mask = input_ids[:max_length], mask[:max_length]
    labels = [t if m else IGNORE_INDEX for t, m in zip(input_ids, mask, strict=True)]
    return Tokenized(input_ids=list(input_ids), labels=labels, truncated=truncated)


class SampleTokenizer:
    """Tokenizes `TrainingSample`s for a processor.

    Args:
        processor (`ProcessorMixin`): the model's `LlavaProcessor` (tokenizer, chat template, image processor).
        max_length (`int | None`, defaults to `None`): the length limit of the rule above.
    """

    def __init__(self, processor: ProcessorMixin, max_length: int | None = None) -> None:
        self.tokenizer = processor.tokenizer
        self.chat_template = processor.chat_template
        self.max_length = max_length
        self.processor = processor
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(processor.image_token)
        self.image_tokens = image_token_count(processor)
        # LLaVA-NeXT / OneVision: the count depends on each image's size (read from its header, cached per size)
        self.tiled = bool(getattr(processor.image_processor, "image_grid_pinpoints", None))
        self._counts: dict[tuple[int, int], int] = {}
        # Control tokens a template writes (<s>, </s>, <|im_end|>, ...); the image placeholder has its own blocks.
        specials = set(self.tokenizer.all_special_tokens)
        specials |= {str(t) for t in self.tokenizer.added_tokens_decoder.values() if t.special}
        specials -= {processor.image_token, str(self.tokenizer.unk_token)}
        self.special_tokens = re.compile("|".join(map(re.escape, sorted(specials)))) if specials else None

    def tokens_for(self, image: str | None) -> int:
        """How many image tokens the image at path `image` becomes (`image_tokens` unless tiled by size)."""
        if not self.tiled or image is None:
            return self.image_tokens
        with Image.open(image) as opened:
            size = opened.size
        if size not in self._counts:
            self._counts[size] = image_token_count(self.processor, size)
        return self._counts[size]

    def _expand(
        self, input_ids: list[int], mask: list[int], n_image: int | None = None
    ) -> tuple[list[int], list[int]]:
        n_image = self.image_tokens if n_image is None else n_image
        ids_out: list[int] = []
        mask_out: list[int] = []
        for token, m in zip(input_ids, mask, strict=True):
            if token == self.image_token_id:
                ids_out += [token] * n_image
                mask_out += [0] * n_image
            else:
                ids_out.append(token)
                mask_out.append(m)
        return ids_out, mask_out

    def plain(self, caption: str, with_image: bool = True, n_image: int | None = None) -> tuple[list[int], list[int]]:
        """Stage-1 plain format: `[bos] <image> caption eos`, loss on `caption eos` (`n_image` image tokens)."""
        tok = self.tokenizer
        prefix = ([tok.bos_token_id] if tok.bos_token_id is not None else []) + (
            [self.image_token_id] if with_image else []
        )
        answer = tok(caption.strip(), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        return self._expand(prefix + answer, [0] * len(prefix) + [1] * len(answer), n_image)

    def chat(self, messages: list[dict], n_image: int | None = None) -> tuple[list[int], list[int]]:
        """Stage-2 chat format through the chat template; loss on the `{% generation %}` spans."""
        encoded = self.tokenizer.apply_chat_template(
            messages,
            chat_template=self.chat_template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        return self._expand(list(encoded["input_ids"]), list(encoded["assistant_masks"]), n_image)

    def check_text(self, texts: list[str]) -> str | None:
        """The reason to drop a sample with these texts (`EMPTY_TURN`, `SPECIAL_TOKEN_IN_TEXT`), or `None`."""
        if any(not text.strip() for text in texts):
            return EMPTY_TURN
        if self.special_tokens is not None and any(self.special_tokens.search(text) for text in texts):
            return SPECIAL_TOKEN_IN_TEXT
        return None

    def _texts(self, messages: list[dict]) -> list[str]:
        return [
            m["content"] if isinstance(m["content"], str)
            else "".join(block.get("text", "") for block in m["content"] if block.get("type") == "text")
            for m in messages
            if m["role"] != "system"
        ]  # fmt: skip

    def tokenize_many(self, samples: list[TrainingSample]) -> list[Tokenized | str]:
        """Tokenize `samples`; for each, a `Tokenized` or the reason it is dropped. The conversations are rendered
        and tokenized in one `apply_chat_template` call (the tokenizer encodes them as a batch)."""
        results: list[Tokenized | str | None] = [None] * len(samples)
        chats: list[int] = []
        for i, sample in enumerate(samples):
            if sample.messages is None:
                n_image = self.tokens_for(sample.image)
                input_ids, mask = self.plain(sample.caption or "", sample.image is not None, n_image)
                results[i] = fit_length(input_ids, mask, self.image_token_id, self.max_length)
            elif reason := self.check_text(self._texts(sample.messages)):
                results[i] = reason
            else:
                chats.append(i)
        if chats:
            encoded = self.tokenizer.apply_chat_template(
                [samples[i].messages for i in chats],
                chat_template=self.chat_template,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
            )
            for i, input_ids, mask in zip(chats, encoded["input_ids"], encoded["assistant_masks"], strict=True):
                input_ids, mask = self._expand(list(input_ids), list(mask), self.tokens_for(samples[i].image))
                results[i] = fit_length(input_ids, mask, self.image_token_id, self.max_length)
        return results

    def __call__(self, sample: TrainingSample) -> Tokenized | str:
        """Tokenize `sample`; return a `Tokenized` or the reason it is dropped."""
        return self.tokenize_many([sample])[0]
