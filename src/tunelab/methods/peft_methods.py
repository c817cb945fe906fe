"""What the PEFT-backed methods share: the task type PEFT wants and one way of applying a PEFT config."""

from tunelab.errors import ConfigError
from tunelab.methods.base import BuildContext

PEFT_TASK_TYPES = {"causal-lm": "CAUSAL_LM", "classification": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}


def apply_peft(model, peft_config, method: str):
    """Wrap the model; PEFT's ValueError (e.g. no matching target modules) becomes a ConfigError."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config)
    except ValueError as exc:
        raise ConfigError(
            f"method {method}: {str(exc).splitlines()[0]}", "check lora.target_modules for this model"
        ) from None


def task_type(context: BuildContext) -> str:
    return PEFT_TASK_TYPES[context.task]
