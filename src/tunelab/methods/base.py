"""What a fine-tuning method is: one `Method` object that every other stage asks instead of comparing names.

A method transforms a loaded base model, says which parameters train, how its weights are saved
and loaded back, whether they fold into the base, what the cost planner must count for it, and
which objective the training loop optimises. `methods/registry.py` holds the table of them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config import RunConfig
    from tunelab.cost.memory import TrainSetup
    from tunelab.models.catalogue import ModelSpec
    from tunelab.training.objectives import Objective


ADAPTER_BYTES = 4  # PEFT and tunelab keep adapter weights (and their saved inputs) in fp32


@dataclass(frozen=True)
class WeightsFormat:
    """Where a method's trained weights live in a run folder, and how they are written and read back."""

    folder: str  # "adapter" or "model"
    library: str  # what loads it outside tunelab: "transformers", "peft" or "tunelab"
    save: Callable[[Any, Path], None]  # (model, folder)
    load: Callable[[Path, str, str, str], Any]  # (folder, task, base model name, device) -> model
    holds: Callable[[Path], bool]  # does this folder hold weights of this format?


@dataclass(frozen=True)
class BuildContext:
    """What applying a method needs besides the model (flat, unpacked from the config by the builder)."""

    config: "RunConfig"
    task: str
    model_name: str
    device: str


@dataclass(frozen=True)
class ObjectiveContext:
    """What choosing a loss needs: the resolved config, the device and the train split's facts."""

    config: "RunConfig"
    task: str
    device: str
    labels: list[str] | None
    train_records: list[dict]
    pad_id: int
    packing: bool


def no_extra_activations(spec: "ModelSpec", setup: "TrainSetup") -> float:
    return 0.0


def supervised_objective(context: ObjectiveContext) -> "Objective":
    from tunelab.training.class_weights import class_weight_tensor
    from tunelab.training.objectives import supervised

    weights = class_weight_tensor(
        context.config.train.class_weights, context.train_records, context.labels, context.device
    )
    return supervised(context.task, packing=context.packing, pad_id=context.pad_id, class_weights=weights)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line for --help, error messages and the docs
    apply: Callable[[Any, BuildContext], Any]  # (loaded base, context) -> model ready to train
    trainable_params: Callable[["ModelSpec", "TrainSetup"], float]  # for the cost planner
    weights: WeightsFormat
    learning_rate: float = 2e-4  # default peak rate, written into the saved config when none is given
    trains_base: bool = False  # every base weight trains: gradients, optimizer states, 6N FLOPs per token
    virtual_tokens: bool = False  # learned tokens in front of the input: no packing; the planner counts them
    needs_cuda: bool = False
    needs_packages: tuple[str, ...] = ()
    quantization: Callable[[], Any] | None = None  # a transformers quantization config to load the base with
    merge_refusal: str | None = None  # why the weights cannot fold into the base; None: they can
    teacher: bool = False  # holds a frozen teacher of the base's size (memory, an extra forward pass)
    activation_extra: Callable[["ModelSpec", "TrainSetup"], float] = no_extra_activations  # bytes per token per block
    objective: Callable[[ObjectiveContext], "Objective"] = supervised_objective
    lighter: tuple[str, ...] = ()  # methods the planner suggests, in order, when this one does not fit
    settings: tuple[str, ...] = ()  # the config sections the method reads (lora, prompt, adapter, distill)

    @property
    def mergeable(self) -> bool:
        return self.merge_refusal is None

    @property
    def saves_whole_model(self) -> bool:
        """The trained weights are a complete model (nothing to merge, nothing to load a base for)."""
        return self.weights.library == "transformers"
