"""The sampling defaults, written once: what a job samples with where its request leaves a knob unset.

Every request shape (the chat routes' `GenerationParams`, batch items, swipes and continues, `/v1` chat
and text completions, llama-server's `/completion` and the textgen fields SillyTavern sends to it) falls
back to these, through api/turns/sampling.py; `SamplingParams` and the request schemas take their
defaults from here, so /docs shows the values a job gets. The reply's length is a setting instead
(`DEFAULT_MAX_TOKENS`, settings.py), since a deployment picks it.

Some APIs we imitate have other defaults of their own; we keep ours on every route, on purpose, so
one request sent to two routes samples alike (SillyTavern and the openai SDK send their own values
when they care):
- OpenAI's `/v1`: temperature 1.0, top_p 1.0 (and no top_k / min_p);
- llama-server's `/completion`: temperature 0.8, `n_predict` -1 (no limit).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingDefaults:
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float


DEFAULTS = SamplingDefaults(
    # This service's own, since its first chat routes (OpenAI's is 1.0, llama-server's 0.8).
    temperature=0.7,
    # llama.cpp's own, llama-server's too (OpenAI's top_p is 1.0: off).
    top_p=0.95,
    top_k=40,
    min_p=0.05,
    # Off, as in llama.cpp, OpenAI and text-generation-webui.
    repeat_penalty=1.0,
    presence_penalty=0.0,
    frequency_penalty=0.0,
)
