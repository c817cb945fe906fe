"""QLoRA: LoRA over a base quantised to 4-bit NF4 with double quantisation and bf16 compute (CUDA only)."""

from dataclasses import replace

from tunelab.methods.base import BuildContext
from tunelab.methods.lora import LORA, apply_lora


def nf4_quantization():
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def apply_qlora(model, context: BuildContext):
    from peft import prepare_model_for_kbit_training

    checkpointing = context.config.train.gradient_checkpointing
    return apply_lora(prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing), context)


QLORA = replace(
    LORA,
    name="qlora",
    summary="LoRA over a base quantised to 4-bit NF4 by bitsandbytes",
    apply=apply_qlora,
    needs_cuda=True,
    needs_packages=("bitsandbytes",),
    quantization=nf4_quantization,
    lighter=(),
)
