"""Tiny random-init models and a word-level tokenizer for the evaluation tests (no downloads, no bundled models).

Imported by tests/test_eval*.py and tests/test_report*.py; holds fixtures only.
"""

import pytest

WORDS = (
    "the a an of to in on and is was he she him her his man woman men women john mary king queen "
    "cat dog sat mat ran fast slow red blue green big small good bad news sport world business "
    "paris france london city river house car road summary title headline text answer yes no "
    'user assistant system { } : , . " name age colour 1 2 3 4 5 6 7 8 9 0'
).split()
SPECIAL = ["<pad>", "<unk>", "<eos>", "<|im_start|>", "<|im_end|>", "\n"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(dict.fromkeys(SPECIAL + WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = TEMPLATE
    return tokenizer


@pytest.fixture(scope="session")
def word_tokenizer():
    return build_tokenizer()


def tiny_causal_lm(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval()


def tiny_classifier(tokenizer, labels: list[str], seed: int = 0):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return BertForSequenceClassification(config).eval()


def loaded(model, tokenizer, task: str, name: str):
    from tunelab.inference.engine import LoadedModel

    return LoadedModel(model, tokenizer, task, name, "tiny-base")


@pytest.fixture(scope="session")
def tiny_lm_pair(word_tokenizer):
    """(tuned, base): two different random Llamas sharing the word-level tokenizer."""
    return (
        loaded(tiny_causal_lm(word_tokenizer, 1), word_tokenizer, "causal-lm", "tuned"),
        loaded(tiny_causal_lm(word_tokenizer, 2), word_tokenizer, "causal-lm", "base"),
    )


@pytest.fixture(scope="session")
def tiny_classifier_pair(word_tokenizer):
    labels = ["news", "sport", "world", "business"]
    return (
        loaded(tiny_classifier(word_tokenizer, labels, 1), word_tokenizer, "classification", "tuned"),
        loaded(tiny_classifier(word_tokenizer, labels, 2), word_tokenizer, "classification", "base"),
    )
