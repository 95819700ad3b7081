"""A reply continues from the token ids already streamed (issue 25: a stream survives its worker), on
the real Gemma GGUF through the llama.cpp engine, no stack needed.

Each piece of text comes with the ids of the tokens it completes, so what a client saw is always the
text of the ids reported with it; a reply resumed with those ids (prefilled after the prompt, never
re-tokenized from the text) goes on with exactly the text the greedy reply had after them, and ends
the same way, whether it is resumed alone or with others in the same decode steps."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.protocol import GenerationResult, Resume
from schemas.jobs import ChatMessage, SamplingParams

# (question, extra sampling): rare characters the vocabulary spells in UTF-8 byte tokens (a character
# spans four tokens), a stop string that begins inside a token and ends the reply, Korean text,
# penalties (which must see the resumed tokens as the reply's), and a prompt long enough for prefix reuse.
CASES = {
    "byte_tokens": ("Repeat after me: 𓀀𓁐𓃰 𠜎𠜱 ꙮ", {}),
    "stop_string": ("Say hello in French.", {"stop": ["lo in Span"]}),
    # Stop strings that begin the reply's text and never end it: held back, the text before a
    # character that spans tokens is sent while that character is not whole yet.
    "held_characters": ("Repeat after me: 𓀀𓁐𓃰 𠜎𠜱 ꙮ", {"stop": [" 𓀀X", "𓁐Y"]}),
    "korean": ("한국어로 짧게 자기소개를 해 주세요.", {}),
    "penalties": ("What is two plus two?", {"repeat_penalty": 1.3, "frequency_penalty": 0.5}),
    "long_prompt": (
        "Summarize this. " + "The river flows past the old mill, and the miller counts. " * 6,
        {},
    ),
}
MAX_TOKENS = 40


@dataclass
class Reply:
    """What a reply streamed: its pieces, each with the token ids reported with it, and its result."""

    pieces: list[tuple[str, list[int]]] = field(default_factory=list)
    result: GenerationResult | None = None

    def __call__(self, text: str, logprobs=None, token_ids: list[int] = ()) -> bool:
        self.pieces.append((text, list(token_ids)))
        return True

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.pieces)

    @property
    def ids(self) -> list[int]:
        return [token for _, ids in self.pieces for token in ids]

    def resume_after(self, pieces: int) -> Resume:
        """What a worker that died after sending the first `pieces` pieces leaves for the next one."""
        cut = Reply(self.pieces[:pieces])
        return Resume(token_ids=cut.ids, text=cut.text)


def sampling(case: str, **overrides) -> SamplingParams:
    return SamplingParams(**{"max_tokens": MAX_TOKENS, "temperature": 0, **CASES[case][1], **overrides})


def generate(gemma: LlamaCppRuntime, case: str, resume: Resume | None = None, **overrides) -> Reply:
    reply = Reply()
    messages = [ChatMessage(role="user", content=CASES[case][0])]
    reply.result = gemma.generate(messages, sampling(case, **overrides), reply, resume=resume)
    return reply


def cut_points(reply: Reply) -> list[int]:
    """A few places a worker may die: after the first piece, a third, two thirds, the last but one."""
    last = len(reply.pieces) - 1
    return sorted({1, last // 3, 2 * last // 3, last} - {0})


@pytest.fixture(scope="module")
def whole(gemma: LlamaCppRuntime) -> dict[str, Reply]:
    """Each case's greedy reply, uninterrupted."""
    return {case: generate(gemma, case) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_the_text_streamed_so_far_is_the_text_of_the_token_ids_reported_with_it(
    gemma: LlamaCppRuntime, whole: dict[str, Reply], case: str
) -> None:
    reply = whole[case]

    for count in range(1, len(reply.pieces) + 1):
        so_far = Reply(reply.pieces[:count])
        if reply.result.finish_reason == "stop" and count == len(reply.pieces):
            # The text before a stop string may end inside a token, which is never reported.
            assert so_far.text.startswith(gemma.reply_text(so_far.ids))
        else:
            assert gemma.reply_text(so_far.ids) == so_far.text

    if case == "byte_tokens":  # a character that spans tokens is sent whole, with all of them
        assert ("𓀀", reply.ids[5:9]) in reply.pieces
    if case == "stop_string":
        assert reply.result.finish_reason == "stop" and "lo in Span" not in reply.text
        assert len(reply.ids) < reply.result.completion_tokens
    else:
        assert len(reply.ids) == reply.result.completion_tokens


@pytest.mark.parametrize("case", CASES)
def test_a_reply_resumed_from_its_reported_tokens_goes_on_with_the_text_it_would_have_had(
    gemma: LlamaCppRuntime, whole: dict[str, Reply], case: str
) -> None:
    reply = whole[case]
    for pieces in cut_points(reply):
        resume = reply.resume_after(pieces)

        rest = generate(gemma, case, resume)

        assert resume.text + rest.text == reply.text, f"resumed after {pieces} pieces"
        assert rest.pieces == reply.pieces[pieces:]
        assert (rest.result.finish_reason, rest.result.completion_tokens) == (
            reply.result.finish_reason,
            reply.result.completion_tokens,
        )


def test_a_reply_resumes_from_its_token_ids_never_from_its_text_tokenized_again(
    gemma: LlamaCppRuntime,
) -> None:
    """Tokens a model may sample that the tokenizer would not make of their text (here "Bonjour!
    Comment" a character a token): the reply goes on as after a prompt that ends with those very ids."""
    messages = [ChatMessage(role="user", content=CASES["stop_string"][0])]
    text = "Bonjour! Comment"
    spelled = [gemma.text_tokens(character)[-1] for character in text]
    assert gemma.reply_text(spelled) == text and gemma.text_tokens(text) != spelled
    after_prompt, resumed = Reply(), Reply()

    engine = gemma.engine()
    engine.generate(
        gemma.prompt_tokens(messages) + spelled, sampling("penalties"), gemma.n_ctx, after_prompt, None
    )
    gemma.generate(
        messages, sampling("penalties", max_tokens=MAX_TOKENS + len(spelled)), resumed, Resume(spelled, text)
    )

    assert resumed.text and resumed.pieces == after_prompt.pieces


def test_a_resumed_prompt_and_reply_reuse_the_kv_cache_that_holds_them(
    gemma: LlamaCppRuntime, whole: dict[str, Reply]
) -> None:
    reply = whole["long_prompt"]
    prompt = len(gemma.prompt_tokens([ChatMessage(role="user", content=CASES["long_prompt"][0])]))
    generate(gemma, "long_prompt")  # its stream now holds the prompt and the reply
    before = REGISTRY.get_sample_value("chatbot_worker_prompt_tokens_reused_total", {"model": "lumimaid"})

    rest = generate(gemma, "long_prompt", reply.resume_after(len(reply.pieces) - 1))

    reused = REGISTRY.get_sample_value("chatbot_worker_prompt_tokens_reused_total", {"model": "lumimaid"})
    assert reused - before > prompt
    assert rest.pieces == reply.pieces[-1:]


def test_four_replies_resumed_at_once_share_the_decode_steps_and_each_goes_on_as_alone(
    gemma: LlamaCppRuntime, whole: dict[str, Reply]
) -> None:
    cases = ["byte_tokens", "stop_string", "korean", "penalties"]
    resumes = {case: whole[case].resume_after(len(whole[case].pieces) // 3) for case in cases}

    with ThreadPoolExecutor(len(cases)) as pool:
        rests = dict(
            zip(cases, pool.map(lambda case: generate(gemma, case, resumes[case]), cases), strict=True)
        )

    for case in cases:
        assert resumes[case].text + rests[case].text == whole[case].text, case
        assert rests[case].result == whole[case].result, case


def test_max_tokens_counts_the_whole_reply_the_resumed_tokens_included(
    gemma: LlamaCppRuntime, whole: dict[str, Reply]
) -> None:
    reply = whole["korean"]
    assert reply.result.finish_reason == "length"

    done = generate(gemma, "korean", reply.resume_after(len(reply.pieces)))
    resume = reply.resume_after(2)
    shorter = generate(gemma, "korean", resume, max_tokens=len(resume.token_ids) + 3)

    assert (done.pieces, done.result.finish_reason, done.result.completion_tokens) == (
        [],
        "length",
        MAX_TOKENS,
    )
    assert (shorter.result.finish_reason, shorter.result.completion_tokens) == (
        "length",
        len(resume.token_ids) + 3,
    )
    assert shorter.pieces == reply.pieces[2:5]


def test_a_seeded_sampled_reply_resumed_twice_at_the_same_token_goes_on_the_same_way(
    gemma: LlamaCppRuntime,
) -> None:
    sampled = {"temperature": 1.0, "top_p": 1.0, "seed": 1234}
    first = generate(gemma, "korean", **sampled)
    resume = first.resume_after(len(first.pieces) // 2)

    once = generate(gemma, "korean", resume, **sampled)
    again = generate(gemma, "korean", resume, **sampled)

    assert once.pieces and once.pieces == again.pieces
    assert gemma.reply_text([*resume.token_ids, *once.ids]) == resume.text + once.text
    assert once.result.completion_tokens == len(resume.token_ids) + len(once.ids) == MAX_TOKENS
