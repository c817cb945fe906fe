"""Tiny random-initialised models built from configs (no downloads), cached on disk by a hash of what fixes them.

They share the bundled SmolLM2 tokenizer (and its chat template), so the real tokenisation
path is exercised while the model stays a few hundred thousand parameters.
"""

import hashlib
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

CACHE = Path(os.environ.get("TUNELAB_TEST_CACHE") or Path(tempfile.gettempdir()) / "tunelab-test-models")


@cache
def smollm2_tokenizer_dir() -> Path:
    """The bundled SmolLM2 tokenizer files, converted once per transformers version (the GGUF conversion is its)."""
    import transformers

    target = CACHE / f"smollm2-tokenizer-{transformers.__version__}"
    if not (target / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        from tunelab.models.bundled import BUNDLED, package_file

        gguf = package_file(BUNDLED["smollm2-135m-instruct"])
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        partial = Path(tempfile.mkdtemp(dir=CACHE.mkdir(parents=True, exist_ok=True) or CACHE))
        tokenizer.save_pretrained(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


@cache
def _tokenizer():
    """Loaded once per process: every tiny config reads its vocabulary size and special ids."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())


def cache_key(config, model_class) -> str:
    """12 hex chars of sha256 over what fixes the weights: the config, the class and the transformers version.

    Keyed by name alone, an edited config or an upgraded transformers silently reused stale weights.
    """
    import transformers

    blob = json.dumps(
        {
            "config": config.to_dict(),
            "class": f"{model_class.__module__}.{model_class.__qualname__}",
            "transformers": transformers.__version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _save(name: str, model_class, config) -> Path:
    target = CACHE / f"{name}-{cache_key(config, model_class)}"
    if not (target / "config.json").exists():
        import torch

        torch.manual_seed(0)
        partial = Path(tempfile.mkdtemp(dir=CACHE))
        model_class(config).save_pretrained(partial)
        _tokenizer().save_pretrained(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def tiny_llama() -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save("tiny-llama", LlamaForCausalLM, config)


def tiny_bert() -> Path:
    from transformers import BertConfig, BertModel

    tokenizer = _tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return _save("tiny-bert", BertModel, config)


def tiny_t5() -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tokenizer()
    pad = tokenizer.pad_token_id or 0
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_ff=128,
        num_layers=2,
        num_heads=4,
        d_kv=16,
        decoder_start_token_id=pad,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save("tiny-t5", T5ForConditionalGeneration, config)
