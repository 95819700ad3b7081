"""Does this CPU's llama.cpp give a token the same logits whatever batch it is decoded in?

The engine promises that a greedy answer is the same batched or alone, with its history cached or
prefilled again. With flash attention that holds as long as every matrix product gives a row the same
bits whatever rows share its batch and wherever it falls in it. It does with llama.cpp's plain kernels
and with the AMX repacking (one-row VNNI and multi-row AMX tiles agree), but not with the repacking
of CPUs without AMX (AVX2 / AVX-512 `CPU_REPACK`): its kernels take rows four at a time and the rest
one by one, with another quantization of the activations, and on such a CPU one greedy reply of
eight differed batched and alone (reproduced here with a llama.cpp built without AMX). The
difference depends on the values, so a probe of one repeated token may miss it; this one decodes a
real sentence three ways and compares every position's logits bit for bit: whole in one batch,
a token at a time, and in one batch behind another sequence's tokens (every row shifted).
"""

import ctypes
import logging

import llama_cpp

log = logging.getLogger(__name__)

# Ordinary text of a few dozen tokens: words, punctuation, digits and markup-like characters.
PROBE_TEXT = (
    '*Rachel looks up from her notes.* "It\'s 7:45 already? We should go," she says, '
    "closing the book (page 212) and smiling at the rain outside."
)
SHIFT_TOKENS = 3  # the other sequence's tokens before the probe's in the shifted batch


def decodes_alike(model, n_threads: int, flash_attn: bool) -> bool:
    """True when the probe sentence's logits are identical at every position, decoded whole, a token
    at a time and shifted behind another sequence in its batch."""
    vocab = llama_cpp.llama_model_get_vocab(model)
    tokens = [llama_cpp.llama_vocab_bos(vocab), *_tokenize(vocab, PROBE_TEXT)]
    params = llama_cpp.llama_context_default_params()
    params.n_seq_max = 4
    params.n_ctx = 4 * (len(tokens) + SHIFT_TOKENS + 16)
    params.kv_unified = False
    params.n_batch = params.n_ubatch = len(tokens) + SHIFT_TOKENS
    params.n_threads = params.n_threads_batch = n_threads
    params.flash_attn = flash_attn
    params.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, params)
    if not ctx:
        raise RuntimeError("llama.cpp could not create the probe's context")
    batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
    row_bytes = llama_cpp.llama_vocab_n_tokens(vocab) * ctypes.sizeof(ctypes.c_float)
    try:
        decode = _Decoder(ctx, batch, row_bytes)
        whole = decode([(token, pos, 0) for pos, token in enumerate(tokens)])
        one_by_one = [decode([(token, pos, 1)])[0] for pos, token in enumerate(tokens)]
        shift = [(token, pos, 2) for pos, token in enumerate(tokens[:SHIFT_TOKENS])]
        shifted = decode(shift + [(token, pos, 3) for pos, token in enumerate(tokens)])[SHIFT_TOKENS:]
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    for name, logits in (("a token at a time", one_by_one), ("shifted in its batch", shifted)):
        differing = [pos for pos, (a, b) in enumerate(zip(whole, logits, strict=True)) if a != b]
        if differing:
            log.info("decoded %s, positions %s of %d differ from whole", name, differing, len(tokens))
            return False
    return True


def _tokenize(vocab, text: str) -> list[int]:
    raw = text.encode("utf-8")
    buffer = (llama_cpp.llama_token * (len(raw) + 8))()
    count = llama_cpp.llama_tokenize(vocab, raw, len(raw), buffer, len(buffer), False, False)
    if count < 0:
        raise RuntimeError("the probe's text did not tokenize")
    return list(buffer[:count])


class _Decoder:
    """Decodes (token, position, stream) entries as one batch; returns every row's logits as bytes."""

    def __init__(self, ctx, batch, row_bytes: int) -> None:
        self.ctx, self.batch, self.row_bytes = ctx, batch, row_bytes

    def __call__(self, entries: list[tuple[int, int, int]]) -> list[bytes]:
        batch = self.batch
        for i, (token, pos, stream) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = stream
            batch.logits[i] = True
        batch.n_tokens = len(entries)
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed in the batch-invariance probe ({status})")
        return [
            ctypes.string_at(llama_cpp.llama_get_logits_ith(self.ctx, i), self.row_bytes)
            for i in range(len(entries))
        ]
