"""The relay load test's synthetic runtime honours the contract every runtime has with the worker."""

from model_registry import ModelSpec
from prompts.context_fit import fit_to_window
from runtimes.protocol import Resume
from runtimes.synthetic import SyntheticRuntime
from schemas.jobs import ChatMessage, ContextFit, SamplingParams

SPEC = ModelSpec(name="load", runtime="synthetic", weights="none", params={"tokens_per_s": 1000, "n_ctx": 8})
MESSAGES = [
    ChatMessage(role="system", content="you are a load"),
    ChatMessage(role="user", content="an old turn of many words"),
    ChatMessage(role="user", content="now"),
]


def test_it_emits_each_token_stamped_with_its_emit_time_and_stops_when_asked() -> None:
    runtime = SyntheticRuntime(SPEC)
    stamps: list[float] = []

    whole = runtime.generate(
        MESSAGES, SamplingParams(max_tokens=5), lambda text: stamps.append(float(text)) or True
    )
    cut = runtime.generate(MESSAGES, SamplingParams(max_tokens=5), lambda _: False)

    assert (whole.finish_reason, whole.completion_tokens, len(stamps)) == ("length", 5, 5)
    assert stamps == sorted(stamps)
    assert (cut.finish_reason, cut.completion_tokens) == ("cancelled", 1)
    assert whole.prompt_tokens == len(runtime.prompt_tokens(MESSAGES)) == 11


def test_its_token_ids_are_their_places_and_a_resumed_reply_goes_on_from_the_next_one() -> None:
    runtime = SyntheticRuntime(SPEC)
    ids: list[list[int]] = []

    result = runtime.generate(
        MESSAGES,
        SamplingParams(max_tokens=5),
        lambda text, token_ids: ids.append(token_ids) or True,
        resume=Resume(token_ids=[0, 1], text="0.1 0.2 "),
    )

    assert ids == [[2], [3], [4]]
    assert (result.finish_reason, result.completion_tokens) == ("length", 5)


def test_its_prompts_can_be_fitted_to_its_window() -> None:
    runtime = SyntheticRuntime(SPEC)

    fitted = fit_to_window(
        MESSAGES, ContextFit(keep_first=1, keep_last=1), runtime.n_ctx, runtime.prompt_tokens
    )

    assert [message.content for message in fitted] == ["you are a load", "now"]
