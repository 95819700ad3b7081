"""How one sequence of the transformers engine picks its next token: the job's logit bias and
penalties as logits processors (transformers' own where it has one), then greedy, or transformers'
temperature, top-k, top-p and min-p warpers and a draw from the sequence's own seeded generator; and a
recorder of each step's logprobs. The recorder comes first, so logprobs are the model's own
distribution, before any penalty, bias or warper, as on llama.cpp."""

import random

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from runtimes.protocol import InvalidSamplingError, resumed_seed
from schemas.jobs import PENALTY_LAST_N, SamplingParams


class StepLogprobs(LogitsProcessor):
    """Keeps the log-softmax of the step's logits (one sequence) for the token sampled from them."""

    def __init__(self) -> None:
        self.last = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores[0].float(), dim=-1).cpu().numpy()
        return scores


class PresenceFrequencyPenalty(LogitsProcessor):
    """OpenAI's presence and frequency penalties over the last PENALTY_LAST_N tokens, as llama.cpp's
    penalties sampler applies them (transformers has no such processor)."""

    def __init__(self, presence: float, frequency: float) -> None:
        self.presence = presence
        self.frequency = frequency

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        recent = input_ids[:, -PENALTY_LAST_N:]
        counts = torch.zeros_like(scores).scatter_add_(1, recent, torch.ones_like(recent, dtype=scores.dtype))
        return scores - counts * self.frequency - (counts > 0).to(scores.dtype) * self.presence


def logits_processors(
    sampling: SamplingParams, n_vocab: int, recorder: StepLogprobs | None
) -> LogitsProcessorList:
    if sampling.grammar is not None:
        raise InvalidSamplingError("response_format (a grammar) is not supported by the transformers runtime")
    outside = sorted(token for token in sampling.logit_bias if not 0 <= token < n_vocab)
    if outside:
        raise InvalidSamplingError(
            f"logit_bias: tokens {outside} are not in the vocabulary (0..{n_vocab - 1})"
        )
    processors = LogitsProcessorList([recorder] if recorder is not None else [])
    if sampling.logit_bias:
        bias = [[[token], value] for token, value in sampling.logit_bias.items()]
        processors.append(SequenceBiasLogitsProcessor(sequence_bias=bias))
    if sampling.repeat_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(sampling.repeat_penalty))
    if sampling.presence_penalty or sampling.frequency_penalty:
        processors.append(PresenceFrequencyPenalty(sampling.presence_penalty, sampling.frequency_penalty))
    return processors


class SequenceSampler:
    """One sequence's sampling, over its own tokens (prompt, then reply: a resumed reply's first tokens
    in `reply`) and its own random generator: a seed gives the same draws whatever else is in the batch."""

    def __init__(
        self, sampling: SamplingParams, n_vocab: int, prompt: list[int], reply: list[int] = ()
    ) -> None:
        self.recorder = StepLogprobs() if sampling.logprobs is not None else None
        self.processors = logits_processors(sampling, n_vocab, self.recorder)
        if any(not 0 <= token < n_vocab for token in reply):
            raise ValueError(f"the resumed reply holds tokens outside the vocabulary (0..{n_vocab - 1})")
        self.tokens = [*prompt, *reply]
        self.generator = None
        if sampling.temperature > 0:
            self.processors.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k > 0:
                self.processors.append(TopKLogitsWarper(sampling.top_k))
            self.processors.append(TopPLogitsWarper(sampling.top_p))
            if sampling.min_p > 0:
                self.processors.append(MinPLogitsWarper(sampling.min_p))
            seed = (
                resumed_seed(sampling.seed, len(reply))
                if sampling.seed is not None
                else random.getrandbits(63)
            )
            self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, logits: torch.Tensor) -> int:
        """The next token, from this step's logits (one row, on the CPU); it joins the sequence's tokens."""
        scores = logits[None]
        if self.processors:
            scores = self.processors(torch.tensor([self.tokens]), scores)
        if self.generator is None:
            token = int(scores[0].argmax())
        else:
            token = int(torch.multinomial(scores[0].softmax(-1), 1, generator=self.generator))
        self.tokens.append(token)
        return token
