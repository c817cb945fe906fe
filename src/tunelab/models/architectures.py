"""Which transformers model types are encoder-decoders and which are encoder-only: one table.

Loading (which head a task gets) and the catalogue (the shape that memory and cost are planned on) each kept
their own list, and they disagreed: the catalogue took ALBERT and MPNet for decoders, and knew Pegasus, Marian,
UMT5 and LongT5 only by their config's flag. Both now ask `classify`; any other model type is a decoder.
"""

from typing import Literal

Architecture = Literal["encoder-decoder", "encoder", "decoder"]

ENCODER_DECODER = frozenset({"t5", "mt5", "umt5", "longt5", "bart", "mbart", "pegasus", "marian"})
ENCODER_ONLY = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "albert", "mpnet"}
)


def classify(model_config: dict) -> Architecture:
    """The architecture of a transformers config dict; its own `is_encoder_decoder` flag outranks the table."""
    model_type = model_config.get("model_type", "")
    if model_config.get("is_encoder_decoder") or model_type in ENCODER_DECODER:
        return "encoder-decoder"
    if model_type in ENCODER_ONLY:
        return "encoder"
    return "decoder"
