"""A sequence's `llama_sampler` chain, built from its job's sampling parameters with llama.cpp's own
samplers (penalties, logit bias, top-k, top-p, min-p, temperature, seeded dist; greedy at temperature 0),
in the order llama-cpp-python's `Llama` uses."""

import random

import llama_cpp

from schemas.jobs import SamplingParams

PENALTY_LAST_N = 64  # how many recent tokens (end of the prompt, then the reply) the penalties see


def sampler_chain(model, sampling: SamplingParams):
    """A new chain; the caller frees it with `llama_sampler_free`."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    add(
        llama_cpp.llama_sampler_init_penalties(
            PENALTY_LAST_N, sampling.repeat_penalty, sampling.frequency_penalty, sampling.presence_penalty
        )
    )
    if sampling.logit_bias:
        biases = (llama_cpp.llama_logit_bias * len(sampling.logit_bias))(
            *(llama_cpp.llama_logit_bias(token, bias) for token, bias in sampling.logit_bias.items())
        )
        vocab = llama_cpp.llama_model_get_vocab(model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(biases), biases))
    if sampling.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    add(llama_cpp.llama_sampler_init_top_k(sampling.top_k))
    add(llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
    add(llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
    add(llama_cpp.llama_sampler_init_temp(sampling.temperature))
    seed = sampling.seed if sampling.seed is not None else random.getrandbits(32)
    add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain
