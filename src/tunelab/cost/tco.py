"""Total cost of ownership over M months: the OpenAI fine-tuning API, a self-hosted open model on a
rented GPU, and a smaller model on a cheaper GPU or CPU; cumulative cost and the break-even month.

The horizon is dated (from a start day, default today), because OpenAI's fine-tuning closes to new
jobs on a known day and a fine-tuned model stops serving with its base snapshot: an option that is
not available over the whole horizon is marked so and left out of "cheapest"."""

import calendar
import math
from dataclasses import dataclass, field
from datetime import date

from tunelab.cost import prices as price_data
from tunelab.cost.compute import default_throughput, inference_tokens_per_second, training_flops
from tunelab.cost.estimate import capacity_bytes, memory_verdict
from tunelab.cost.memory import GB, TrainSetup
from tunelab.cost.tokens import DEFAULT_EXAMPLES, DEFAULT_TOKENS_PER_EXAMPLE
from tunelab.errors import ConfigError
from tunelab.models.catalogue import ModelSpec, lookup

DAYS_PER_MONTH = 365 / 12
PEAK_TO_AVERAGE = 3.0  # traffic at the busiest hour relative to the daily average
SERVING_MEMORY_MARGIN = 1.3  # KV cache and activations on top of bf16 weights
CHECKPOINT_COPIES = 3  # base weights + adapters/merged copies kept in storage


@dataclass
class Option:
    name: str
    detail: str
    upfront: float
    monthly: float
    breakdown: dict = field(default_factory=dict)
    unavailable_because: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return not self.unavailable_because

    def cumulative(self, months: int) -> list[float]:
        return [round(self.upfront + self.monthly * m, 2) for m in range(months + 1)]


def openai_option(
    openai: dict, train_tokens: float, monthly_in: float, monthly_out: float, unavailable_because: list[str]
) -> Option:
    training = train_tokens / 1e6 * openai["training"]
    inference = monthly_in / 1e6 * openai["input"] + monthly_out / 1e6 * openai["output"]
    return Option(
        f"OpenAI {openai['name']}",
        f"fine-tuning API, {openai['training']:g} $/1M training tokens",
        training,
        inference,
        {"training": round(training, 2), "inference_per_month": round(inference, 2)},
        unavailable_because,
    )


def horizon_end(start: date, months: int) -> date:
    """The day `months` calendar months after `start` (the 31st becomes the month's last day)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def openai_unavailable(openai_name: str, prices: dict, start: date, end: date) -> list[str]:
    """Why OpenAI fine-tuning cannot be bought for the whole of start..end; empty when it can."""
    closure = price_data.wind_down(prices)
    reasons = []
    if closure.closed(start):
        reasons.append(f"closed to new fine-tuning jobs since {closure.closed_to_new_jobs}")
    elif closure.closed(end):
        reasons.append(
            f"closed to new fine-tuning jobs from {closure.closed_to_new_jobs}, before the horizon ends on {end}"
        )
    shutdown = price_data.base_shutdown(openai_name, prices)
    if shutdown and date.fromisoformat(shutdown["shutdown"]) <= end:
        verb = "shut down" if date.fromisoformat(shutdown["shutdown"]) <= start else "shuts down"
        reasons.append(f"its base snapshot {verb} on {shutdown['shutdown']}, and the fine-tuned model with it")
    return reasons


def _mid(gpu: price_data.Gpu) -> float:
    return (gpu.price_low + gpu.price_high) / 2


def serving_plan(spec: ModelSpec, devices: list, needed_tps: float, prices: dict) -> tuple:
    """The cheapest device (and replica count) whose bf16 weights fit and that reaches the needed tokens/s."""
    batch, mfu = price_data.hosting(prices, "serving_batch"), price_data.hosting(prices, "serving_mfu")
    best = None
    for gpu in devices:
        bytes_per_param = 4 if gpu.is_cpu else 2
        if spec.params * bytes_per_param * SERVING_MEMORY_MARGIN > capacity_bytes(gpu):
            continue
        tps = inference_tokens_per_second(
            spec.params, bytes_per_param, gpu.bandwidth_gbs, gpu.peak_tflops, int(batch), mfu
        )
        replicas = max(1, math.ceil(needed_tps / tps))
        monthly = replicas * _mid(gpu) * price_data.hosting(prices, "hours_per_month")
        if best is None or monthly < best[3]:
            best = (gpu, replicas, tps, monthly)
    if best is None:
        raise ConfigError(f"{spec.name} fits no catalogued device for serving", "pick a smaller model")
    return best


def training_plan(spec: ModelSpec, method: str, train_tokens: float, devices: list) -> tuple:
    """The cheapest catalogued GPU on which the fine-tuning fits, and its cost (midpoint of the range)."""
    setup = TrainSetup(method=method, micro_batch=8, seq_len=512)
    best = None
    for gpu in devices:
        if gpu.is_cpu or not memory_verdict(spec, setup, gpu, devices).fits:
            continue
        low, high = default_throughput(gpu.peak_tflops, gpu.mfu_low, gpu.mfu_high, method, gpu.name).hours(
            training_flops(spec, method, int(train_tokens), 512)
        )
        cost = (low * gpu.price_low + high * gpu.price_high) / 2
        if best is None or cost < best[1]:
            best = (gpu, cost, (low + high) / 2)
    if best is None:
        raise ConfigError(
            f"{method} fine-tuning of {spec.name} fits no single catalogued GPU",
            "use --method qlora or a smaller model",
        )
    return best


def self_host_option(
    label: str,
    spec: ModelSpec,
    method: str,
    train_tokens: float,
    needed_tps: float,
    devices: list,
    prices: dict,
    maintenance: float,
) -> Option:
    train_gpu, training, train_hours = training_plan(spec, method, train_tokens, devices)
    serve_gpu, replicas, tps, serving = serving_plan(spec, devices, needed_tps, prices)
    storage = spec.params * 2 / GB * CHECKPOINT_COPIES * price_data.hosting(prices, "storage_per_gb_month")
    detail = (
        f"{spec.name}: {method} on {train_gpu.name} (~{train_hours:.2g} h), "
        f"served on {replicas} x {serve_gpu.name} (~{tps:,.0f} tok/s each)"
    )
    return Option(
        label,
        detail,
        training,
        serving + storage + maintenance,
        {
            "training": round(training, 2),
            "serving_per_month": round(serving, 2),
            "storage_per_month": round(storage, 2),
            "maintenance_per_month": round(maintenance, 2),
            "serving_device": serve_gpu.name,
            "replicas": replicas,
        },
    )


def break_even(api: Option, other: Option, months: int) -> int | None:
    """First month in 0..M from which `other`'s cumulative cost stays at or below the API's; None if never."""
    pairs = list(zip(api.cumulative(months), other.cumulative(months)))
    for month in range(len(pairs)):
        if all(b <= a for a, b in pairs[month:]):
            return month
    return None


def tco(
    requests_per_day: float,
    tokens_per_request: float,
    months: int,
    output_share: float = 0.25,
    openai_model: str = "gpt-4.1-mini",
    model: str = "meta-llama/Meta-Llama-3-8B",
    method: str = "lora",
    small_model: str = "Qwen/Qwen2.5-1.5B-Instruct",
    train_tokens: float | None = None,
    rate: float | None = None,
    maintenance_hours: float | None = None,
    prices_file=None,
    start: date | None = None,
) -> dict:
    if requests_per_day <= 0 or tokens_per_request <= 0 or months < 1:
        raise ConfigError(
            "--requests-per-day and --tokens-per-request must be positive and --months at least 1",
            "e.g. --requests-per-day 5000 --tokens-per-request 800 --months 12",
        )
    prices = price_data.load_prices(prices_file)
    openai = _openai_prices(openai_model, prices)
    start = start or date.today()
    end = horizon_end(start, months)
    train_tokens = train_tokens or DEFAULT_EXAMPLES * DEFAULT_TOKENS_PER_EXAMPLE * 3
    monthly_tokens = requests_per_day * tokens_per_request * DAYS_PER_MONTH
    monthly_in, monthly_out = monthly_tokens * (1 - output_share), monthly_tokens * output_share
    needed_tps = requests_per_day * tokens_per_request / 86400 * PEAK_TO_AVERAGE
    rate = price_data.hosting(prices, "maintenance_rate_per_hour") if rate is None else rate
    hours = (
        price_data.hosting(prices, "maintenance_hours_per_month") if maintenance_hours is None else maintenance_hours
    )
    devices = price_data.all_gpus(prices)
    unavailable = openai_unavailable(openai["name"], prices, start, end)
    api = openai_option(openai, train_tokens, monthly_in, monthly_out, unavailable)
    options = [api, *self_hosted(model, small_model, method, train_tokens, needed_tps, devices, prices, rate * hours)]
    return {
        "requests_per_day": requests_per_day,
        "tokens_per_request": tokens_per_request,
        "months": months,
        "start": str(start),
        "end": str(end),
        "monthly_tokens": round(monthly_tokens),
        "needed_tokens_per_second": round(needed_tps, 2),
        "train_tokens": int(train_tokens),
        "options": [_option_result(o, api, months) for o in options],
        "cheapest": min((o for o in options if o.available), key=lambda o: o.cumulative(months)[-1]).name,
        "excluded_from_cheapest": [o.name for o in options if not o.available],
        "openai_fine_tuning": openai_fine_tuning(openai["name"], prices, start),
        "assumptions": [
            f"{output_share:.0%} of tokens are output",
            f"busiest hour = {PEAK_TO_AVERAGE:g} x average traffic",
            f"maintenance {hours:g} h/month at ${rate:g}/h (half for the smaller model)",
            "GPU prices: midpoint of the low..high range in prices.yaml",
            f"OpenAI prices as of {prices['openai']['as_of']}",
        ],
    }


def self_hosted(
    model: str,
    small_model: str,
    method: str,
    train_tokens: float,
    needed_tps: float,
    devices: list,
    prices: dict,
    maintenance: float,
) -> list[Option]:
    """Options (b) and (c): the open model, and the smaller one on a cheaper device at half the upkeep."""
    return [
        self_host_option(
            "Self-hosted open model", lookup(model), method, train_tokens, needed_tps, devices, prices, maintenance
        ),
        self_host_option(
            "Smaller model, cheaper device",
            lookup(small_model),
            method,
            train_tokens,
            needed_tps,
            devices,
            prices,
            maintenance / 2,
        ),
    ]


def _openai_prices(name: str, prices: dict) -> dict:
    openai = price_data.openai_model(name, prices)
    if openai is None:
        raise ConfigError(
            f"unknown OpenAI model '{name}'", "use one of: " + ", ".join(price_data.openai_models(prices))
        )
    return openai


def _option_result(option: Option, api: Option, months: int) -> dict:
    return {
        "name": option.name,
        "detail": option.detail,
        "upfront": round(option.upfront, 2),
        "monthly": round(option.monthly, 2),
        f"total_{months}_months": option.cumulative(months)[-1],
        "cumulative": option.cumulative(months),
        "break_even_month_vs_api": None if option is api else break_even(api, option, months),
        "available": option.available,
        "unavailable_because": option.unavailable_because,
        **option.breakdown,
    }


def openai_fine_tuning(openai_name: str, prices: dict, day: date) -> dict:
    """The wind-down dates with their source, the chosen model's base shutdown, and one sentence for people."""
    closure = price_data.wind_down(prices)
    return {
        **closure.as_dict(),
        "base_shutdown": price_data.base_shutdown(openai_name, prices),
        "summary": closure.summary(day),
    }


def plot_cumulative(result: dict, path) -> None:
    """Cumulative cost per option over the months, with each break-even month marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    months = list(range(result["months"] + 1))
    for option in result["options"]:
        label = option["name"] + ("" if option["available"] else " (unavailable)")
        style = "-" if option["available"] else "--"
        axes.plot(months, option["cumulative"], style, marker="o", markersize=3, label=label)
        if option.get("break_even_month_vs_api") is not None:
            month = option["break_even_month_vs_api"]
            axes.axvline(month, linestyle=":", color="grey")
            axes.annotate(f"break-even: month {month}", (month, option["cumulative"][month]), fontsize=8)
    axes.set_xlabel("month")
    axes.set_ylabel("cumulative cost (USD)")
    axes.set_title(f"{result['requests_per_day']:g} requests/day x {result['tokens_per_request']:g} tokens")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
