"""Write a LLaMA-architecture transformers model as a GGUF file for llama.cpp and Ollama.

The layout follows llama.cpp's converter: tensors renamed to GGUF names (token_embd, blk.N.*,
output_norm, output), Q and K rows permuted for llama.cpp's rotary layout (transformers' GGUF
loader undoes exactly this permutation), one-dimensional tensors kept in float32, and the
tokenizer (byte-level BPE vocabulary, token types, merges, special ids) and chat template embedded
so the file runs on its own.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from tunelab.errors import ModelError

SUPPORTED_ARCHITECTURES = ("llama",)
# What --quantize accepts: the types gguf-py can write itself. K-quants (q4_k_m ...) need llama.cpp.
WEIGHT_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
LLAMACPP_ONLY = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")
LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
TOP_TENSORS = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def check_weight_type(weight_type: str) -> None:
    if weight_type in LLAMACPP_ONLY:
        raise ModelError(
            f"--quantize {weight_type} needs llama.cpp's k-quant code, which tunelab does not bundle",
            f"export with --quantize f16, then run `llama-quantize model.gguf model-{weight_type}.gguf "
            f"{weight_type.upper()}`; or pick one of {', '.join(WEIGHT_TYPES)}",
        )
    if weight_type not in WEIGHT_TYPES:
        raise ModelError(f"unknown GGUF weight type {weight_type}", f"use one of {', '.join(WEIGHT_TYPES)}")


def check_architecture(config) -> None:
    model_type = getattr(config, "model_type", "?")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"GGUF export supports {', '.join(SUPPORTED_ARCHITECTURES)} models; this one is {model_type}",
            "export with --format hf and convert with llama.cpp's convert_hf_to_gguf.py",
        )
    rope = rope_parameters(config)
    if rope.get("rope_type", "default") not in ("default", "linear"):
        raise ModelError(
            f"GGUF export does not handle rope scaling {rope.get('rope_type')}",
            "export with --format hf and convert with llama.cpp's convert_hf_to_gguf.py",
        )
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ModelError(
            "GGUF export does not handle LLaMA models with attention or MLP biases",
            "export with --format hf and convert with llama.cpp's convert_hf_to_gguf.py",
        )


def rope_parameters(config) -> dict:
    """transformers 5 keeps rope settings in `rope_parameters`; older configs used rope_theta/rope_scaling."""
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params


def gguf_name(hf_name: str) -> str | None:
    """`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`; None for tensors GGUF does not keep."""
    stem, _, suffix = hf_name.rpartition(".")
    if stem in TOP_TENSORS:
        return f"{TOP_TENSORS[stem]}.{suffix}"
    parts = stem.split(".")
    if parts[:2] == ["model", "layers"] and ".".join(parts[3:]) in LAYER_TENSORS:
        return f"blk.{parts[2]}.{LAYER_TENSORS['.'.join(parts[3:])]}.{suffix}"
    return None


def permute_rotary(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary layout: within each head, interleave the two halves of the rows."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def model_tensors(model) -> dict[str, np.ndarray]:
    """GGUF name → float32 array; tied output weights are left out (llama.cpp reuses token_embd)."""
    config = model.config
    tensors = {}
    for hf_name, tensor in model.state_dict().items():
        name = gguf_name(hf_name)
        if name is None or (name == "output.weight" and config.tie_word_embeddings):
            continue
        array = tensor.detach().float().cpu().numpy()
        if ".attn_q." in name:
            array = permute_rotary(array, config.num_attention_heads)
        elif ".attn_k." in name:
            array = permute_rotary(array, config.num_key_value_heads)
        tensors[name] = array
    return tensors


def encode_tensor(array: np.ndarray, weight_type: str):
    """(data, raw_dtype) for the writer; 1-D tensors and rows that do not fill a block stay float32."""
    import gguf

    if array.ndim == 1 or weight_type == "f32":
        return array.astype(np.float32), None
    if weight_type == "f16":
        return array.astype(np.float16), None
    qtype = gguf.GGMLQuantizationType[weight_type.upper()]
    block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
    if array.shape[-1] % block_size:
        return array.astype(np.float16), None
    return gguf.quants.quantize(array, qtype), qtype


def file_type(weight_type: str) -> int:
    import gguf

    if weight_type == "f32":  # ALL_F32 is 0, so no `.get() or` shortcut here
        return gguf.LlamaFileType.ALL_F32
    return gguf.LlamaFileType[f"MOSTLY_{weight_type.upper()}"]


def add_model_metadata(writer, config, name: str, weight_type: str) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = rope_parameters(config)
    writer.add_name(name)
    writer.add_file_type(int(file_type(weight_type)))
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if rope.get("rope_type") == "linear":
        import gguf

        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    """llama.cpp's name for how text is split before BPE (it picks the matching regex by this name)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    types = [step.get("type") for step in steps]
    if types == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if types == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    pattern = (steps[0].get("pattern") or {}).get("Regex", "") if types and types[0] == "Split" else ""
    if "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in pattern and r"\p{N}{1,3}" in pattern:
        return "llama-bpe"
    return "default"


def add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    """Byte-level BPE vocabulary as llama.cpp's `gpt2` tokenizer model, with merges, ids and chat template."""
    import gguf

    tokenizer_json = json.loads(tokenizer.backend_tokenizer.to_str())
    if tokenizer_json.get("model", {}).get("type") != "BPE" or tokenizer_json["model"].get("byte_fallback"):
        raise ModelError(
            "GGUF export handles byte-level BPE tokenizers (GPT-2/LLaMA-3/SmolLM style) only",
            "export with --format hf and convert with llama.cpp's convert_hf_to_gguf.py",
        )
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = {index: token for index, token in tokenizer.added_tokens_decoder.items()}
    tokens, types = [], []
    for index in range(vocab_size):
        if index in added:
            tokens.append(added[index].content)
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        elif index in by_id:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(tokenizer_json))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    if special.chat_template is None and getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)


def write_gguf(model, tokenizer, path: Path, weight_type: str = "f16", name: str = "model") -> Path:
    """The model as one GGUF file at `path` (written aside, then renamed into place)."""
    import gguf

    check_weight_type(weight_type)
    check_architecture(model.config)
    tensors = model_tensors(model)
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), "llama")
    add_model_metadata(writer, model.config, name, weight_type)
    add_tokenizer(writer, tokenizer, model.config.vocab_size)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for tensor_name, array in tensors.items():
        data, raw_dtype = encode_tensor(array, weight_type)
        writer.add_tensor(tensor_name, data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return path
