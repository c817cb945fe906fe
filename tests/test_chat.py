"""`tunelab chat`: history and /reset in the session, and the real command driven in a pseudo-terminal."""

import sys

import pytest
from test_export_fixtures import full_run, lora_run  # noqa: F401

from tunelab.errors import ModelError
from tunelab.inference.chat import ChatSession
from tunelab.inference.engine import LoadedModel, load_target


def test_history_grows_per_turn_and_reset_keeps_only_the_system_message(full_run):
    session = ChatSession(load_target(str(full_run)), system="be brief", temperature=0.0, max_new_tokens=4)
    first = "".join(session.stream("hello"))
    session.reply("and again")
    assert [m["role"] for m in session.history] == ["system", "user", "assistant", "user", "assistant"]
    assert session.history[2]["content"] == first.strip()
    session.reset()
    assert session.history == [{"role": "system", "content": "be brief"}]
    assert session.reply("hello") == first.strip()  # greedy: same prompt, same answer


def test_classification_models_are_refused():
    with pytest.raises(ModelError, match="cannot chat"):
        ChatSession(LoadedModel(None, None, "classification", "clf", "clf"))


def test_chat_in_a_pseudo_terminal_two_turns_reset_exit(lora_run, tmp_path):
    import pexpect

    env = {
        "TUNELAB_HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "TERM": "dumb",
        "TUNELAB_QUIET": "1",
    }
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "tunelab.cli.main",
            "chat",
            str(lora_run),
            "--temperature",
            "0",
            "--max-new-tokens",
            "4",
            "--system",
            "be brief",
        ],
        env=env,
        encoding="utf-8",
        timeout=180,
        dimensions=(40, 160),
    )
    try:
        child.expect("/reset")
        child.expect("you> ")
        answers = []
        for text in ("hello there", "tell me more"):
            child.sendline(text)
            child.expect("model> ")
            child.expect("you> ")
            answers.append(child.before.strip())
        child.sendline("/reset")
        child.expect("conversation cleared")
        child.expect("you> ")
        child.sendline("hello there")
        child.expect("model> ")
        child.expect("you> ")
        assert child.before.strip() == answers[0]  # greedy after /reset: the first answer again
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_compare_shows_base_and_tuned_side_by_side(lora_run, tmp_path):
    import pexpect
    from tiny_models import tiny_llama

    env = {
        "TUNELAB_HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "TERM": "dumb",
        "TUNELAB_QUIET": "1",
    }
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "tunelab.cli.main",
            "chat",
            str(lora_run),
            "--compare",
            str(tiny_llama()),
            "--temperature",
            "0",
            "--max-new-tokens",
            "4",
        ],
        env=env,
        encoding="utf-8",
        timeout=180,
        dimensions=(40, 200),
    )
    try:
        child.expect("you> ")
        child.sendline("hello")
        child.expect("base: ")
        child.expect("tuned: ")
        child.expect("you> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
