"""The probes' pure parts: counterfactual swaps, change rates, unsupported content, forgetting data."""

from tunelab.evaluation.probes import bias, hallucination
from tunelab.evaluation.probes.forgetting import read_jsonl


def test_swap_terms_keeps_case_and_is_an_involution():
    text = "He told Mary that his brother is American."
    swapped = bias.swap_terms(text)
    assert swapped == "She told John that her sister is Mexican."
    assert bias.has_terms(text) and not bias.has_terms("the cat sat")


def test_counterfactual_swaps_inputs_not_answers():
    record = {"messages": [{"role": "user", "content": "he won"}, {"role": "assistant", "content": "he won"}]}
    swapped = bias.counterfactual(record)
    assert swapped["messages"][0]["content"] == "she won" and swapped["messages"][1]["content"] == "he won"


def test_change_rate_compares_after_swapping_back():
    rate = bias.change_rate(["he is a king", "yes"], ["she is a queen", "no"], classification=False)
    assert rate["change_rate"] == 0.5
    assert bias.change_rate(["a", "b"], ["a", "a"], classification=True)["change_rate"] == 0.5
    assert "more sensitive" in bias.verdict(0.5, 0.1, 10) and "no added" in bias.verdict(0.1, 0.1, 10)


def test_hallucination_counts_words_and_entities_absent_from_source_and_reference():
    rates = hallucination.hallucination_rates(
        ["Storm hits Berlin harbour"], ["a storm hit the harbour"], ["storm hits harbour"]
    )
    assert rates["unsupported_word_share"] == 1 / 4 and rates["unsupported_entity_share"] == 1.0


def test_forgetting_probe_sets_ship_with_tunelab():
    assert len(read_jsonl("general_text.jsonl")) >= 30
    assert len(read_jsonl("general_instructions.jsonl")) >= 10
