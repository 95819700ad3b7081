"""A plain greedy sequence (temperature 0, nothing else that touches the logits) takes the logits'
first maximum by argmax instead of through llama.cpp's sampler chain (runtimes/llama_cpp_sampling.py):
the same tokens, without filling the 262,144-entry candidate array each token. Real GGUF, in-process
engine."""

from runtimes.llama_cpp import LlamaCppRuntime
from schemas.jobs import ChatMessage, SamplingParams

QUESTIONS = ["Count from one to twenty in words.", "Tell me about dragons.", "Describe a cat."]


def reply(runtime: LlamaCppRuntime, question: str, **sampling) -> str:
    pieces: list[str] = []
    params = SamplingParams(max_tokens=40, temperature=0, **sampling)
    runtime.generate(
        [ChatMessage(role="user", content=question)], params, lambda text, *_: pieces.append(text) or True
    )
    return "".join(pieces)


def test_plain_greedy_answers_what_the_sampler_chain_answers(gemma: LlamaCppRuntime) -> None:
    # A logit bias of 0 changes no logit, but it sends the sequence through the whole chain.
    for question in QUESTIONS:
        assert reply(gemma, question) == reply(gemma, question, logit_bias={0: 0.0})


def test_greedy_with_a_repeat_penalty_still_gets_its_penalty(gemma: LlamaCppRuntime) -> None:
    """Only greedy over the model's own logits takes the argmax: a penalised one goes through the
    chain, whose penalty changes what it says."""
    question = QUESTIONS[0]
    assert reply(gemma, question, repeat_penalty=1.5) != reply(gemma, question)
