"""Builds a tiny, randomly initialised Qwen3-VL model folder the real loading code can read.

Same files as a real checkpoint (config.json, safetensors, tokenizer with a chat template,
preprocessor_config.json), a few hundred KB, in about three seconds. ``bench/gpu_bench.py``
builds one of a real model's shapes with it (``text``, ``vision``): random weights run at the
real weights' speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "the storm over the pier at night", "a purple chart comparing notion and obsidian",
    "system user assistant represent the user's input retrieve images or text relevant query",
    "screenshot of the settings dialog with a toggle", "friction cost lightning coffee",
    "yes", "no",  # the reranker's answers, each one token as in the real vocabulary
]


def build(folder: Path, hidden: int = 64, seed: int = 0, text: dict[str, Any] | None = None,
          vision: dict[str, Any] | None = None, corpus: Sequence[str] = (), vocab: int = 500,
          device: str = "cpu", dtype: Any = None) -> Path:
    """``text`` and ``vision`` override the tiny config's parts; ``corpus`` and ``vocab`` train
    a tokenizer that splits those texts into about as many tokens as a real one would."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLImageProcessorPil,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
    )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((CORPUS + list(corpus)) * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    ids = {s: fast.convert_tokens_to_ids(s) for s in SPECIAL}
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(fast), "hidden_size": hidden, "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "max_position_embeddings": 4096, "pad_token_id": ids["<|endoftext|>"],
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [4, 2, 2], "mrope_interleaved": True},
            **(text or {}),
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
            "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "out_hidden_size": hidden, "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
            **(vision or {}),
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    with torch.device(device):  # a model of billions is initialised in seconds on a GPU
        model = Qwen3VLForConditionalGeneration(config).eval()
    if dtype is not None:
        model = model.to(dtype)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2).save_pretrained(
        folder)
    return folder
