"""The tokenizer of the built-in tiny model: byte-level BPE trained offline, in milliseconds, on a fixed word list
or on a run's own text.

Byte-level BPE encodes any text (unknown words fall back to byte pieces), so the same tokenizer serves every
domain; the corpus only decides which words get short encodings. Training is deterministic: the same corpus and
vocabulary size give the same tokenizer on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from llava_adapt.model.chat_template import CHAT_FORMATS, IMAGE_TOKEN

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE_TOKEN]

# The chat roles and LLaVA's system prompt, which every training sample starts with; repeated role lines so that
# each role stays one piece. A run's own text (`corpus`) is learned with these.
ROLE_LINES = [
    "USER: ASSISTANT: USER ASSISTANT",
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
]
REPEATED_ROLES = ["ASSISTANT: yes", "USER: what"] * 16
# Everyday English and LLaVA's instructions: no domain's vocabulary. A run of a `tiny` preset learns its tokenizer
# from its own text instead; this list serves a tiny model built outside a run (tests, benchmarks). Anything is
# still encodable, only in more pieces.
WORDS = """
What is in the image? What is this? Which one is it? Where is it? Is there one? Is it? Describe the image.
Answer with a single word. Answer with one word from the choices. Answer yes or no. Options: Choices:
yes no Yes No color colour red green blue yellow purple orange white black gray grey pink brown
circle square triangle star cross diamond shape shapes object objects picture photo
upper lower left right top bottom center centre middle corner in the on of at a an and with near small large big
There is a small thing in the upper left. It is large. It is small. It is near the middle of the picture.
dark light bright pale plain one two three four five six seven eight nine ten
question answer the a an is are was were be it this that these those there here what which where when how why
"""
CORPUS_LINES = [*ROLE_LINES, *(line for line in WORDS.split("\n") if line.strip()), *REPEATED_ROLES]


def build_tiny_tokenizer(vocab_size: int = 512, corpus: Sequence[str] | None = None) -> PreTrainedTokenizerFast:
    """Train the tiny model's byte-level BPE tokenizer and wrap it for transformers.

    Args:
        vocab_size (`int`, defaults to `512`): upper bound on the vocabulary; training stops earlier when the
            corpus has no more pairs to merge.
        corpus (`Sequence[str]`, *optional*): the text to learn the merges from (a run's captions and
            conversations), with the chat roles added; defaults to the built-in word list (`CORPUS_LINES`).

    Returns:
        A `PreTrainedTokenizerFast` with `<pad>`, `<s>`, `</s>`, `<unk>` and the `<image>` token (exposed as
        `tokenizer.image_token`, which `LlavaProcessor` reads), and the LLaVA-1.5 (`vicuna_v1`) chat template.
    """
    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = CORPUS_LINES if corpus is None else [*ROLE_LINES, *REPEATED_ROLES, *corpus]
    backend.train_from_iterator(lines, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_FORMATS["vicuna_v1"].template
    return tokenizer
