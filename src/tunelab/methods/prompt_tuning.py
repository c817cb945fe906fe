"""Prompt tuning: learned virtual-token embeddings in front of the input; the base stays frozen."""

from tunelab.methods.base import BuildContext, Method
from tunelab.methods.peft_methods import apply_peft, task_type
from tunelab.methods.weights import PEFT_ADAPTER


def apply_prompt_tuning(model, context: BuildContext):
    import peft

    prompt = context.config.prompt
    init = (
        {
            "prompt_tuning_init": "TEXT",
            "prompt_tuning_init_text": prompt.init_text,
            "tokenizer_name_or_path": context.model_name,
        }
        if prompt.init_text
        else {}
    )
    config = peft.PromptTuningConfig(num_virtual_tokens=prompt.num_virtual_tokens, task_type=task_type(context), **init)
    return apply_peft(model, config, "prompt-tuning")


PROMPT_TUNING = Method(
    name="prompt-tuning",
    settings=("prompt",),
    summary="learned virtual tokens in front of the input (prompt.num_virtual_tokens)",
    apply=apply_prompt_tuning,
    trainable_params=lambda spec, setup: setup.virtual_tokens * spec.hidden,
    weights=PEFT_ADAPTER,
    virtual_tokens=True,
    merge_refusal="prompt tuning adds learned virtual tokens in front of the input, not weight deltas",
)
