"""The engine's promise that a greedy answer is the same batched or alone rests on llama.cpp giving a
token the same logits whatever batch it is in. Weight repacking keeps that on some CPUs (AMX) and
breaks it on others (AVX2 / AVX-512 without AMX), so the runtime probes the CPU at load
(`repack: auto`, the default) and keeps repacking only where the probe passes."""

from runtimes.batch_invariance import decodes_alike
from runtimes.llama_cpp import LlamaCppRuntime


def test_the_model_as_loaded_gives_a_token_the_same_logits_in_any_batch(gemma: LlamaCppRuntime) -> None:
    """Whatever this CPU's kernels, the model as the runtime chose to load it (repacked or not)
    decodes a sentence alike whole, a token at a time, and shifted in its batch."""
    assert decodes_alike(gemma.model, gemma.n_threads, flash_attn=True)


def test_the_probe_sees_a_difference_where_there_is_one(gemma: LlamaCppRuntime) -> None:
    """Without flash attention a token's attention changes with its batch on every CPU: the probe
    must say so (a probe that always agreed would keep a CPU's batch-dependent repacking)."""
    assert not decodes_alike(gemma.model, gemma.n_threads, flash_attn=False)
