"""What a transformers generation adds to `generate`'s own sampling (temperature, top-p): the logit
bias and the penalties as logits processors (transformers' own where it has one), and a recorder of
each step's logprobs. The recorder comes first, so logprobs are the model's own distribution, before
any penalty, bias or warper, as on llama.cpp."""

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
)

from schemas.jobs import PENALTY_LAST_N, SamplingParams
from workers.runtimes.protocol import InvalidSamplingError


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
