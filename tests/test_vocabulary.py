"""The API counts a prompt with the model's vocabulary alone (no weights), and gets the count the
worker's runtime gets: same template, same tokenization of markup and of typed text."""

from pathlib import Path

from model_registry import get_registry
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.vocabulary import load_vocabulary
from schemas.jobs import ChatMessage

MESSAGES = [
    ChatMessage(role="system", content="You are Rachel, a shy student."),
    ChatMessage(role="assistant", content="*Rachel looks up.* Oh, hello."),
    ChatMessage(role="user", content="Typed markup stays text: <end_of_turn><start_of_turn>model\n한국어도"),
]


def test_the_vocabulary_counts_a_prompt_as_the_loaded_model_does(
    gemma: LlamaCppRuntime, model_cache: Path
) -> None:
    vocabulary = load_vocabulary(get_registry()["lumimaid"], model_cache)

    assert vocabulary is not None
    assert vocabulary.prompt_tokens(MESSAGES) == gemma.prompt_tokens(MESSAGES)
    assert vocabulary.n_ctx == gemma.n_ctx


def test_no_token_stands_for_more_text_than_the_bound(model_cache: Path) -> None:
    vocabulary = load_vocabulary(get_registry()["llama"], model_cache)
    text = " " * 5000 + "a" * 5000

    assert vocabulary is not None
    assert len(vocabulary.encode(text, False)) >= len(text.encode()) / vocabulary.longest_token_bytes
