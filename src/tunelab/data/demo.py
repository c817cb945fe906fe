"""The built-in demo task: customer-support ticket triage into a JSON object.

Seeded and generated, so the answers can be checked exactly: every ticket names a product and
describes a problem whose category and priority follow from its wording. Phrasing varies by
template, customer, product and detail, and categories are imbalanced as in real queues.
"""

import json
import random
from pathlib import Path

SYSTEM = (
    'Triage the ticket. Reply with JSON: "category" (billing, shipping, technical, account, refund), '
    '"priority" (low, medium, high), "product".'
)
PRODUCTS = [
    "Aurora Router",
    "Nimbus Camera",
    "Pulse Watch",
    "Vertex Laptop",
    "Echo Speaker",
    "Drift Scooter",
    "Lumen Lamp",
]
PROBLEMS = {  # category: (share of tickets, problem clauses)
    "technical": (
        0.34,
        [
            "it keeps restarting",
            "it will not turn on",
            "it stopped connecting to wifi",
            "it shows an error code on start",
            "the firmware update failed",
            "the battery drains within an hour",
        ],
    ),
    "billing": (
        0.24,
        [
            "I was charged twice",
            "there is a charge I do not recognise",
            "the invoice has the wrong amount",
            "my card was billed after I cancelled",
        ],
    ),
    "shipping": (
        0.2,
        [
            "the parcel has not arrived yet",
            "it arrived in a broken box",
            "it was delivered to the wrong address",
            "the tracking has not updated in a week",
        ],
    ),
    "account": (
        0.14,
        [
            "my login keeps failing",
            "the password reset email never comes",
            "my account got locked",
            "my profile shows someone else's name",
        ],
    ),
    "refund": (
        0.08,
        [
            "my refund has not come through",
            "the return was accepted but no money came back",
            "the refund was only partial",
        ],
    ),
}
URGENCY = {  # priority: phrasings that decide it
    "high": [
        "This is urgent, I need it fixed today.",
        "Please help ASAP, my business depends on it.",
        "URGENT: nothing works.",
    ],
    "medium": [
        "Could you look into this this week?",
        "I would like this sorted soon.",
        "Please get back to me when you can.",
    ],
    "low": ["No rush, just letting you know.", "Whenever you have time.", "Not urgent at all."],
}
OPENERS = ["Hi,", "Hello team,", "Dear support,", "Hey,", "Good morning,", ""]
NAMES = ["Maria", "John", "Aisha", "Chen", "Lukas", "Priya", "Tom", "Sofia", "Omar", "Emma", "Kenji", "Fatima"]
TEMPLATES = [
    "{opener} about my {product}: {problem}. {urgency} Thanks, {name}",
    "{opener} I ordered a {product} and {problem}. {urgency}",
    "{product} - {problem}. {urgency} ({name})",
    "{opener} {name} here. With the {product}, {problem}. {urgency}",
    "{urgency} {product}, order {order}: {problem}.",
]


def ticket(rng: random.Random) -> dict:
    categories = list(PROBLEMS)
    category = rng.choices(categories, weights=[PROBLEMS[c][0] for c in categories])[0]
    priority = rng.choices(["high", "medium", "low"], weights=[0.3, 0.45, 0.25])[0]
    product = rng.choice(PRODUCTS)
    text = (
        rng.choice(TEMPLATES)
        .format(
            opener=rng.choice(OPENERS),
            product=product,
            problem=rng.choice(PROBLEMS[category][1]),
            urgency=rng.choice(URGENCY[priority]),
            name=rng.choice(NAMES),
            order=rng.randint(10000, 99999),
        )
        .strip()
    )
    answer = json.dumps({"category": category, "priority": priority, "product": product})
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": text},
            {"role": "assistant", "content": answer},
        ]
    }


def write_demo_data(path: Path, size: int = 300, seed: int = 42) -> Path:
    """Write `size` generated tickets as chat JSONL (the OpenAI fine-tuning format)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(size):
            handle.write(json.dumps(ticket(rng)) + "\n")
    return path
