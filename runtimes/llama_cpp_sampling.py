"""A sequence's `llama_sampler` chain, built from its job's sampling parameters with llama.cpp's own
samplers (penalties, logit bias, grammar, top-k, top-p, min-p, temperature, seeded dist; greedy at
temperature 0), in the order llama-cpp-python's `Llama` uses; a token drawn with it; and the
log-softmax of a step's logits."""

import ctypes
import random

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaTokenDataArray

from runtimes.protocol import InvalidSamplingError, resumed_seed
from schemas.jobs import PENALTY_LAST_N, SamplingParams


def sampler_chain(model, sampling: SamplingParams, prompt: list[int], reply: list[int] = ()):
    """A new chain; the caller frees it with `llama_sampler_free`. `reply`: a resumed reply's tokens,
    accepted as if the chain had sampled them.

    The penalties see the end of the prompt too, as llama-server's do; the grammar sees only the reply.
    A resumed seeded reply draws from another seed, one per resume point (`resumed_seed`)."""
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    outside = sorted(token for token in sampling.logit_bias if not 0 <= token < n_vocab)
    if outside:
        raise InvalidSamplingError(
            f"logit_bias: tokens {outside} are not in the vocabulary (0..{n_vocab - 1})"
        )
    if any(not 0 <= token < n_vocab for token in reply):
        raise ValueError(f"the resumed reply holds tokens outside the vocabulary (0..{n_vocab - 1})")
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    penalties = llama_cpp.llama_sampler_init_penalties(
        PENALTY_LAST_N, sampling.repeat_penalty, sampling.frequency_penalty, sampling.presence_penalty
    )
    for token in prompt[-PENALTY_LAST_N:]:
        llama_cpp.llama_sampler_accept(penalties, token)
    add(penalties)
    if sampling.logit_bias:
        biases = (llama_cpp.llama_logit_bias * len(sampling.logit_bias))(
            *(llama_cpp.llama_logit_bias(token, bias) for token, bias in sampling.logit_bias.items())
        )
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(biases), biases))
    if sampling.grammar is not None:
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, sampling.grammar.encode(), b"root")
        if not grammar:
            llama_cpp.llama_sampler_free(chain)
            raise InvalidSamplingError("llama.cpp could not parse the reply's grammar")
        add(grammar)
    if sampling.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return _accepted(chain, reply)
    add(llama_cpp.llama_sampler_init_top_k(sampling.top_k))
    add(llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    add(llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
    add(llama_cpp.llama_sampler_init_temp(sampling.temperature))
    seed = resumed_seed(sampling.seed, len(reply)) if sampling.seed is not None else random.getrandbits(32)
    add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return _accepted(chain, reply)


def _accepted(chain, reply: list[int]):
    for token in reply:
        llama_cpp.llama_sampler_accept(chain, token)
    return chain


def step_logprobs(ctx, index: int, n_vocab: int) -> np.ndarray:
    """The log-softmax of the model's logits at batch position `index`: the model's own distribution,
    before any sampler (penalties, logit bias, grammar, temperature, top-k/p) touches it. Read before
    sampling."""
    logits = np.ctypeslib.as_array(
        ctypes.cast(llama_cpp.llama_get_logits_ith(ctx, index), ctypes.POINTER(ctypes.c_float)),
        shape=(n_vocab,),
    ).astype(np.float64)
    top = logits.max()
    return logits - (top + np.log(np.exp(logits - top).sum()))


def plain_greedy(sampling: SamplingParams) -> bool:
    """Whether the chain is greedy over the model's own logits: temperature 0, penalties off, no logit
    bias, no grammar. Its token is then the logits' first maximum (`llama_sampler_greedy_apply`)."""
    return (
        sampling.temperature <= 0
        and not sampling.logit_bias
        and sampling.grammar is None
        and sampling.repeat_penalty == 1
        and sampling.frequency_penalty == 0
        and sampling.presence_penalty == 0
    )


def sample_token(chain, ctx, index: int, candidates: LlamaTokenDataArray, greedy: bool = False) -> int:
    """What `llama_sampler_sample` does (apply the chain to the step's logits, take the selected
    token, let the chain accept it), with the candidate array kept between calls as llama-server's
    sampler keeps it: `llama_sampler_sample` allocates a fresh one per token, and with Gemma's
    262,144-token vocabulary (3 MiB) that cost 1.5 ms per token here, a sixth of a batched step.

    A `greedy` chain (`plain_greedy`) would only pick the first maximum of the logits: numpy's argmax
    gives the same token without filling the candidate array (0.03 ms instead of ~0.9 ms a token
    here, time the decode threads otherwise wait through); a NaN maximum goes through the chain."""
    logits = np.ctypeslib.as_array(
        ctypes.cast(llama_cpp.llama_get_logits_ith(ctx, index), ctypes.POINTER(ctypes.c_float)),
        shape=(candidates.n_vocab,),
    )
    if greedy:
        token = int(np.argmax(logits))
        if not np.isnan(logits[token]):
            llama_cpp.llama_sampler_accept(chain, token)
            return token
    candidates.copy_logits(logits)
    candidates.candidates.selected = -1
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates.candidates))
    selected = candidates.candidates.selected
    if not 0 <= selected < candidates.candidates.size:
        raise RuntimeError("the sampler chain selected no token")
    token = int(candidates.candidates_data.id[selected])
    llama_cpp.llama_sampler_accept(chain, token)
    return token
