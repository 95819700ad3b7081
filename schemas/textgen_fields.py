"""A text-completion body as SillyTavern's Text Completion sends it, brought to the fields this service
has: the same body goes to `/v1/completions` (its generic OpenAI-compatible type) and to `/completion`
(its llama.cpp type), and it carries every sampler of every backend SillyTavern knows
(public/scripts/textgen-settings.js, getTextGenGenerationData), most of them at a value that turns
them off. So, before validation:

- another backend's name for a field we have is renamed (`n_predict` -> `max_tokens`, `rep_pen` ->
  `repetition_penalty`, ...), and `seed: -1` (random) or `n_predict: -1` (no limit) means unset;
- a sampler this service does not implement is dropped at the value that turns it off, and kept at
  any other, so that the route refuses it by name instead of ignoring it;
- what only describes the connection, or has no effect on what is generated here, is dropped.
"""

from typing import Any

# Another backend's name -> ours; ours wins when both are sent.
ALIASES = {
    "max_new_tokens": "max_tokens",
    "n_predict": "max_tokens",
    "num_predict": "max_tokens",
    "rep_pen": "repetition_penalty",
    "repeat_penalty": "repetition_penalty",
    "sampler_seed": "seed",
    "stopping_strings": "stop",
    "n_probs": "logprobs",
}

# A sampler we do not implement -> the values at which it does nothing.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "typical_p": (1,),
    "typical": (1,),
    "tfs": (1,),
    "tfs_z": (1,),
    "top_a": (0,),
    "epsilon_cutoff": (0,),
    "eta_cutoff": (0,),
    "skew": (0,),
    "min_length": (0,),
    "min_tokens": (0,),
    "num_beams": (1,),
    "length_penalty": (1,),
    "early_stopping": (False,),
    "encoder_repetition_penalty": (1,),
    "no_repeat_ngram_size": (0,),
    "penalty_alpha": (0,),
    "do_sample": (True,),
    "dynamic_temperature": (False,),
    "smoothing_factor": (0,),
    "dry_multiplier": (0,),
    "mirostat_mode": (0,),
    "mirostat": (0,),
    "xtc_probability": (0,),
    "guidance_scale": (1,),
    "negative_prompt": ("",),
    "grammar_string": ("",),
    "grammar": ("",),
    "json_schema": ({},),
    "banned_strings": ([],),
    "custom_token_bans": ("", []),
    "ban_eos_token": (False,),
    "ignore_eos": (False,),
    "rep_pen_slope": (1,),
    "repetition_decay": (0,),
    "speculative_ngram": (False,),
    "max_tokens_second": (0,),
    "add_bos_token": (True,),
    "skip_special_tokens": (True,),
}

# No effect here: the connection (server, type, context size the client assumes), sampler order,
# prompt caching (always on), the penalties' window (fixed, see schemas/jobs.py PENALTY_LAST_N), and
# the settings of samplers that are off (their switch, above, is refused when on).
NO_EFFECT = frozenset(
    {
        "api_type",
        "api_server",
        "legacy_api",
        "truncation_length",
        "num_ctx",
        "cache_prompt",
        "sampler_priority",
        "samplers",
        "sampler_order",
        "temperature_last",
        "spaces_between_special_tokens",
        "rep_pen_range",
        "repetition_penalty_range",
        "repeat_last_n",
        "dynatemp_low",
        "dynatemp_high",
        "dynatemp_range",
        "dynatemp_exponent",
        "smoothing_curve",
        "dry_allowed_length",
        "dry_base",
        "dry_sequence_breakers",
        "dry_penalty_last_n",
        "mirostat_tau",
        "mirostat_eta",
        "xtc_threshold",
    }
)

# Values that mean "unset" in the backends that send them.
UNSET = {"seed": -1, "max_tokens": -1}


def _logit_bias(value: object) -> object:
    """llama.cpp's `[[token, bias], ...]` (`false` bans the token) as OpenAI's `{token: bias}`."""
    if not isinstance(value, list):
        return value
    if not value:
        return None
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in value):
        return value  # left for validation to refuse
    return {token: -100 if bias is False else bias for token, bias in value}


def normalised(body: object) -> object:
    """The body with aliases renamed, neutral and no-effect fields dropped; anything else is left for
    validation (and the route's refusal of unknown fields)."""
    if not isinstance(body, dict):
        return body
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name in NO_EFFECT or (name in NEUTRAL and _neutral(value, NEUTRAL[name])):
            continue
        ours = ALIASES.get(name, name)
        if ours != name and ours in body:  # sent under both names: ours wins
            continue
        fields[ours] = value
    for name, unset in UNSET.items():
        if fields.get(name) == unset:
            del fields[name]
    if "logit_bias" in fields:
        fields["logit_bias"] = _logit_bias(fields["logit_bias"])
    return {name: value for name, value in fields.items() if value is not None}


def _neutral(value: object, neutral: tuple[Any, ...]) -> bool:
    """`value` is one of the neutral values, of the same kind (`True` is not `1` here)."""
    return any(type(value) is type(option) or _both_numbers(value, option) for option in neutral) and (
        value in neutral
    )


def _both_numbers(a: object, b: object) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
