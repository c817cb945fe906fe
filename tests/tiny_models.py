"""Tiny random-initialised models built from configs (no downloads), cached per test session.

They share the bundled SmolLM2 tokenizer (and its chat template), so the real tokenisation
path is exercised while the model stays a few hundred thousand parameters.
"""

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

CACHE = Path(os.environ.get("TUNELAB_TEST_CACHE") or Path(tempfile.gettempdir()) / "tunelab-test-models")


@cache
def smollm2_tokenizer_dir() -> Path:
    """The bundled SmolLM2 tokenizer files, converted once per machine."""
    target = CACHE / "smollm2-tokenizer"
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


def _save(name: str, build) -> Path:
    target = CACHE / name
    if not (target / "config.json").exists():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
        partial = Path(tempfile.mkdtemp(dir=CACHE))
        build(tokenizer).save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def tiny_llama() -> Path:
    def build(tokenizer):
        import torch
        from transformers import AutoModelForCausalLM, LlamaConfig

        torch.manual_seed(0)
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
        return AutoModelForCausalLM.from_config(config)

    return _save("tiny-llama", build)


def tiny_bert() -> Path:
    def build(tokenizer):
        import torch
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        return BertModel(
            BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=512,
                pad_token_id=tokenizer.pad_token_id or 0,
            )
        )

    return _save("tiny-bert", build)


def tiny_t5() -> Path:
    def build(tokenizer):
        import torch
        from transformers import T5Config, T5ForConditionalGeneration

        torch.manual_seed(0)
        pad = tokenizer.pad_token_id or 0
        return T5ForConditionalGeneration(
            T5Config(
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
        )

    return _save("tiny-t5", build)
