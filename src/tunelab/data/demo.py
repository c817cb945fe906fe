"""The built-in demo task: customer-support ticket triage into a JSON object.

Seeded and generated, so the answers can be checked exactly: every ticket names a product and
describes a problem whose category and priority follow from its wording. Phrasing varies by
template, customer, product and detail, and categories are imbalanced as in real queues.
"""

import json
import random
from pathlib import Path

SYSTEM = ('You triage customer-support tickets. Reply with only a JSON object with the keys '
          '"category" (billing, shipping, technical, account or refund), "priority" (low, medium or high) '
          'and "product".')
PRODUCTS = ["Aurora Router", "Nimbus Camera", "Pulse Watch", "Vertex Laptop", "Echo Speaker", "Drift Scooter", "Lumen Lamp"]
PROBLEMS = {  # category: (share of tickets, problem phrasings)
    "technical": (0.34, ["keeps restarting", "will not turn on", "stopped connecting to wifi", "shows an error code on start",
                         "firmware update failed", "battery drains within an hour"]),
    "billing": (0.24, ["was charged twice", "shows a charge I do not recognise", "invoice has the wrong amount",
                       "card was billed after I cancelled"]),
    "shipping": (0.2, ["has not arrived yet", "arrived with a broken box", "was delivered to the wrong address",
                       "tracking has not updated in a week"]),
    "account": (0.14, ["login keeps failing", "password reset email never comes", "account got locked",
                       "profile shows someone else's name"]),
    "refund": (0.08, ["refund has not come through", "return was accepted but no money back", "refund was only partial"]),
}
URGENCY = {  # priority: phrasings that decide it
    "high": ["This is urgent, I need it fixed today.", "Please help ASAP, my business depends on it.", "URGENT: nothing works."],
    "medium": ["Could you look into this this week?", "I would like this sorted soon.", "Please get back to me when you can."],
    "low": ["No rush, just letting you know.", "Whenever you have time.", "Not urgent at all."],
}
OPENERS = ["Hi,", "Hello team,", "Dear support,", "Hey,", "Good morning,", ""]
NAMES = ["Maria", "John", "Aisha", "Chen", "Lukas", "Priya", "Tom", "Sofia", "Omar", "Emma", "Kenji", "Fatima"]
TEMPLATES = [
    "{opener} my {product} {problem}. {urgency} Thanks, {name}",
    "{opener} I ordered a {product} and it {problem}. {urgency}",
    "{product}: {problem}. {urgency} - {name}",
    "{opener} ticket from {name}. The {product} {problem}. {urgency}",
    "{urgency} My {product} {problem}. Order number {order}.",
]


def ticket(rng: random.Random) -> dict:
    categories = list(PROBLEMS)
    category = rng.choices(categories, weights=[PROBLEMS[c][0] for c in categories])[0]
    priority = rng.choices(["high", "medium", "low"], weights=[0.3, 0.45, 0.25])[0]
    product = rng.choice(PRODUCTS)
    text = rng.choice(TEMPLATES).format(opener=rng.choice(OPENERS), product=product, problem=rng.choice(PROBLEMS[category][1]),
                                        urgency=rng.choice(URGENCY[priority]), name=rng.choice(NAMES),
                                        order=rng.randint(10000, 99999)).strip()
    answer = json.dumps({"category": category, "priority": priority, "product": product})
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text},
                         {"role": "assistant", "content": answer}]}


def write_demo_data(path: Path, size: int = 400, seed: int = 42) -> Path:
    """Write `size` generated tickets as chat JSONL (the OpenAI fine-tuning format)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(size):
            handle.write(json.dumps(ticket(rng)) + "\n")
    return path
