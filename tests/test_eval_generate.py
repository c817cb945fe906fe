"""Batched generation: same greedy output as one at a time, stop sequences, reproducible sampling."""

from test_eval_fixtures import tiny_lm_pair, word_tokenizer  # noqa: F401  (fixtures)

from tunelab.inference.generate import chat_prompt, generate

PROMPTS = ["the cat sat", "he ran fast on the road and the dog", "queen", "a big red car in paris and london city"]


def test_batched_greedy_equals_one_at_a_time(tiny_lm_pair):
    model, tokenizer = tiny_lm_pair[0].model, tiny_lm_pair[0].tokenizer
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=4)
    single = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=1)
    assert batched == single and all(batched)


def test_stop_sequences_cut_the_text(tiny_lm_pair):
    model, tokenizer = tiny_lm_pair[0].model, tiny_lm_pair[0].tokenizer
    full = generate(model, tokenizer, PROMPTS, max_new_tokens=8)
    marker = full[0].split()[2]
    stopped = generate(model, tokenizer, PROMPTS, max_new_tokens=8, stop=[marker])
    assert stopped[0] == " ".join(full[0].split()[:2])
    assert all(marker not in text for text in stopped)


def test_sampling_is_reproducible_with_a_seed(tiny_lm_pair):
    model, tokenizer = tiny_lm_pair[0].model, tiny_lm_pair[0].tokenizer
    first = generate(model, tokenizer, PROMPTS, max_new_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    again = generate(model, tokenizer, PROMPTS, max_new_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    assert first == again


def test_chat_prompt_drops_the_final_answer(word_tokenizer):
    messages = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"}]
    prompt = chat_prompt(word_tokenizer, messages)
    assert prompt.endswith("<|im_start|>assistant\n") and "sat" not in prompt
