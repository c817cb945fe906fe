"""The method table: the only list of fine-tuning methods. Config validation, `--method` help, the cost
planner, training, export and the service all ask it; none compares method names.

Adding a method is one module exporting a `Method` and one entry in METHODS (a test registers a
method of its own and trains, saves, loads and plans it without touching any other file).
"""

from pathlib import Path

from tunelab.errors import ConfigError, HardwareError
from tunelab.methods.adapter import ADAPTER
from tunelab.methods.base import BuildContext, Method, with_recipe
from tunelab.methods.distill import DISTILL
from tunelab.methods.full import FULL
from tunelab.methods.ia3 import IA3
from tunelab.methods.lora import LORA
from tunelab.methods.preference import DPO, ORPO, SIMPO
from tunelab.methods.prefix_tuning import PREFIX_TUNING
from tunelab.methods.prompt_tuning import PROMPT_TUNING
from tunelab.methods.qlora import QLORA
from tunelab.methods.reinforcement import GRPO
from tunelab.methods.weights import LABELS_FILE

METHODS: dict[str, Method] = {
    m.name: m for m in (FULL, LORA, QLORA, PROMPT_TUNING, PREFIX_TUNING, ADAPTER, IA3, DISTILL, DPO, ORPO, SIMPO, GRPO)
}
ENCODER_FULL_LIMIT = 500_000_000  # encoders below this many parameters train whole by default


def known_methods() -> str:
    return ", ".join(METHODS)


def get_method(name: str) -> Method:
    """The method called `name`; an unknown name is a ConfigError that lists the known ones."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'", f"use one of: {known_methods()}")
    return METHODS[name]


def weights_methods() -> list[str]:
    """Methods whose weights a preference or reinforcement recipe can train."""
    return [name for name, method in METHODS.items() if method.recipe is None and not method.teacher]


def method_named(name: str, weights: str | None = None) -> Method:
    """The method `name`, its recipe moved onto the weights of method `weights` when one is given."""
    method = get_method(name)
    if weights is None or weights == method.name:
        return method
    if method.recipe is None:
        raise ConfigError(
            f"weights: {weights} applies to preference and reinforcement methods, not {method.name}",
            f"use --method {weights}, or leave weights unset",
        )
    return with_recipe(get_method(weights), method.recipe)


def method_for(config) -> Method:
    """The method a (resolved) config trains with."""
    return method_named(config.method, config.weights)


def default_method(task: str, model_name: str, schema: str | None = None) -> str:
    """The recipe the data's schema asks for (preference pairs, prompts with a grader); else LoRA for
    generative models and full fine-tuning for encoders small enough to train whole."""
    for method in METHODS.values():
        if method.recipe and method.recipe.schema == schema:
            return method.name
    if task != "classification":
        return LORA.name
    from tunelab.models.loading import read_model_config, resolve_model_path

    model_config = read_model_config(resolve_model_path(model_name))
    hidden, layers = model_config.get("hidden_size", 768), model_config.get("num_hidden_layers", 12)
    approx_params = 12 * layers * hidden * hidden + model_config.get("vocab_size", 30000) * hidden
    return FULL.name if approx_params < ENCODER_FULL_LIMIT else LORA.name


def check_hardware(method: Method, device: str) -> None:
    """A method that needs CUDA or a package says so before anything heavy is loaded."""
    if method.needs_cuda and device != "cuda":
        raise HardwareError(
            f"{method.name} needs a CUDA GPU ({method.summary}), and this machine has none",
            "use --method lora here, or run on a machine with an NVIDIA GPU",
        )
    import importlib.util

    for package in method.needs_packages:
        if importlib.util.find_spec(package) is None:
            raise HardwareError(
                f"{method.name} needs the {package} package, which is not installed", f"pip install {package}"
            )


def build_model(method: Method, context: BuildContext, labels: list[str] | None):
    """The base model with the method applied, ready to train."""
    from tunelab.models.loading import load_model

    model_config = context.config.model
    quantization = method.quantization() if method.quantization else None
    model = load_model(
        context.model_name,
        context.task,
        dtype=model_config.dtype,
        device=context.device,
        labels=labels,
        trust_remote_code=model_config.trust_remote_code,
        allow_pickle=model_config.allow_pickle,
        quantization_config=quantization,
    )
    if quantization is None:  # a quantised model is placed by its loader
        model.to(context.device)
    model = method.apply(model, context)
    if context.config.train.gradient_checkpointing and quantization is None:  # k-bit preparation enables it itself
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # frozen embeddings: recomputed blocks still need an input with grad
    return model


def parameter_counts(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "trainable_percent": round(100 * trainable / max(total, 1), 4)}


def save_trained(model, tokenizer, folder: Path, method: Method, labels: list[str] | None = None) -> None:
    """The method's own format (PEFT adapter, bottleneck adapter files, or a model folder), the tokenizer
    and the label names."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    method.weights.save(model, folder)
    tokenizer.save_pretrained(folder)
    if labels:
        (folder / LABELS_FILE).write_text(json.dumps(labels))


def load_trained(folder: Path, method: Method, task: str, base_name: str, device: str = "cpu"):
    """Read back what save_trained wrote, on top of a freshly loaded base where the method needs one."""
    return method.weights.load(Path(folder), task, base_name, device)
