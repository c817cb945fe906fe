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
    """What choosing a loss needs: the resolved config, the device, the train split's facts, and the model
    and tokenizer (preference losses read reference log-probabilities, reinforcement samples completions)."""

    config: "RunConfig"
    task: str
    device: str
    labels: list[str] | None
    train_records: list[dict]
    pad_id: int
    packing: bool
    model: Any = None
    tokenizer: Any = None
    run_dir: Path | None = None
    examples: tuple = ()  # (train, validation) examples, for losses that score them before training


@dataclass(frozen=True)
class EncodeContext:
    """What turning records into examples needs (flat, unpacked from the config by the workflow)."""

    task: str
    max_length: int
    loss_on: str = "assistant"
    labels: list[str] | None = None


def supervised_examples(records: list[dict], tokenizer, context: EncodeContext, name: str) -> list:
    from tunelab.training.encode import encode_split

    return encode_split(
        records,
        tokenizer,
        context.task,
        max_length=context.max_length,
        loss_on=context.loss_on,
        labels=context.labels,
        name=name,
    )


@dataclass(frozen=True)
class Recipe:
    """A loss and the data it reads (preference pairs, prompts and a grader), trainable on the weights of any
    supervised method: `dpo` is the DPO recipe on LoRA weights unless `weights` names another method."""

    name: str
    summary: str
    objective: Callable[[ObjectiveContext], "Objective"]
    encode: Callable[[list[dict], Any, EncodeContext, str], list]
    schema: str  # the prepared data's schema it trains on: "preference" or "reinforcement"
    learning_rate_scale: float = 1.0  # times the weights method's rate
    settings: tuple[str, ...] = ()
    extra_forward: float = 0.0  # forward passes per trained token besides the policy's (a reference pass)
    reference_copy: bool = False  # on full weights the reference is a frozen copy (else scored once up front)
    samples_online: bool = False  # every trained token is first sampled by the policy (a decode pass)


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
    encode: Callable[[list[dict], Any, EncodeContext, str], list] = supervised_examples
    recipe: Recipe | None = None  # set on preference and reinforcement methods (see with_recipe)
    lighter: tuple[str, ...] = ()  # methods the planner suggests, in order, when this one does not fit
    settings: tuple[str, ...] = ()  # the config sections the method reads (lora, prompt, adapter, distill)

    @property
    def mergeable(self) -> bool:
        return self.merge_refusal is None

    @property
    def saves_whole_model(self) -> bool:
        """The trained weights are a complete model (nothing to merge, nothing to load a base for)."""
        return self.weights.library == "transformers"


def with_recipe(weights: Method, recipe: Recipe) -> Method:
    """The recipe's loss and data on `weights`' transform, format, planner terms and hardware needs."""
    from dataclasses import replace

    return replace(
        weights,
        name=recipe.name,
        summary=f"{recipe.summary}; trains {weights.name} weights (set `weights` for others)",
        objective=recipe.objective,
        encode=recipe.encode,
        learning_rate=weights.learning_rate * recipe.learning_rate_scale,
        settings=weights.settings + recipe.settings,
        recipe=recipe,
    )
