"""Continuous batching for one llama.cpp model: one decode loop over every active sequence.

The engine owns a llama.cpp context with `max_sequences` KV streams (one per sequence, so a
sequence's attention never sees another's cache and batching cannot change a greedy answer). Its
thread runs the loop; each step builds one `llama_batch` holding the next token of every decoding
sequence plus chunks of waiting prompts (chunked prefill: a long prompt is fed a chunk per step, so
the others keep producing tokens meanwhile), decodes it, and samples each sequence's next token
with that sequence's own `llama_sampler` chain. A job joins at the next step; a sequence that
finishes, is cancelled or fails leaves at once, freeing its slot. Its KV stream keeps what it
holds, so a later prompt that starts with the same tokens (a character's pinned prompt, the
conversation's earlier turns) prefills only the rest (prefix reuse, as llama-server's
`cache_prompt`).

When more sequences want a slot than it has, the slots are shared out between keys
(runtimes/fair_share.py): a sequence that loses its slot is preempted by recompute, as vLLM does: it
keeps its sampler (random state, penalty history), its text and its tokens, leaves its KV stream,
and when its turn comes back prefills its prompt and reply so far again (reusing what its old stream
still holds), then goes on decoding: by the engine's batch invariance, the same tokens as if it had
never paused. Its stream only pauses.

Callers (Celery task threads) submit a `Sequence` and follow its events (runtimes/sequences.py,
shared with the transformers engine), so publishing a token never holds up the loop.
"""

import codecs
import ctypes
import logging
from dataclasses import dataclass

import llama_cpp
from llama_cpp._internals import LlamaTokenDataArray

from runtimes import metrics
from runtimes.fair_share import Claim, slot_holders
from runtimes.llama_cpp_sampling import plain_greedy, sample_token, sampler_chain, step_logprobs
from runtimes.logprobs import token_logprob
from runtimes.protocol import GenerationResult
from runtimes.sequences import EngineThread, ReplyText, Sequence, TextPiece
from schemas.events import TokenLogprob

log = logging.getLogger(__name__)


# Fewer common tokens than this (a chat template's opening, say) are prefilled again rather than
# reused: it saves nothing, and without flash attention a reused prefix's tokens were computed in
# batches of another shape, which on a near tie can tip a greedy answer, so short prompts keep the
# answer they get cold.
MIN_REUSE = 64
# A prompt's last tokens are never fed as a batch of one: without flash attention llama.cpp computes a
# one-token batch's attention with other CPU kernels than a larger one's, so the last token of a
# prompt whose prefix was reused, fed alone, got other logits than cold, and the same seed gave
# another reply. Fed two at a time, as cold, its logits are the same.
MIN_FEED = 2


@dataclass
class EngineConfig:
    n_ctx: int  # per sequence
    n_batch: int  # tokens per decode step, all sequences together
    max_sequences: int
    n_threads: int
    n_threads_batch: int | None = None  # prompt processing; n_threads when unset
    model: str = ""  # the metrics' label
    offload_kqv: bool = True
    # Flash attention visits a query's KV cells one by one and skips the masked ones, so a token's
    # values do not depend on how long the other streams are, nor on how many tokens share its batch
    # or were fed with it; without it, attention's dot products run over the longest stream's padded
    # length, summed in an order that moves with it, and a near tie can flip a greedy token.
    flash_attn: bool = True
    lora_path: str | None = None


class _Slot:
    """The engine's side of a sequence: its KV stream, position, sampler and text state."""

    def __init__(self, seq: Sequence, seq_id: int, sampler) -> None:
        self.seq = seq
        self.seq_id = seq_id  # its KV stream; None while it waits for a slot
        self.sampler = sampler
        self.greedy = plain_greedy(seq.sampling)  # sampled by argmax (`sample_token`)
        # What its KV stream must hold before it decodes: its prompt (and a resumed reply's tokens);
        # after a preemption, everything it held then.
        self.target = seq.tokens
        self.fed = 0  # tokens of the target already in the KV cache
        self.kv_tokens: list[int] = []  # what this sequence's KV stream holds, in order
        self.next_token: int | None = None  # sampled, not yet fed
        self.preempted = False  # it has lost its slot at least once
        self.generated = len(seq.resumed)
        # A resumed reply's text ends with a whole token, so the decoder starts afresh.
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.reply = ReplyText(list(seq.sampling.stop), seq.resumed_text)
        self.logprobs: list[TokenLogprob] = []  # of the generated tokens not reported yet

    @property
    def prefilling(self) -> bool:
        return self.fed < len(self.target)

    @property
    def claim(self) -> Claim:
        return Claim(self.seq.share, self.seq_id is not None, self.seq.order)


class LlamaCppEngine(EngineThread):
    preempts = True

    def __init__(self, model, config: EngineConfig) -> None:
        self._model = model  # a llama_model pointer, kept alive by its owner
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._candidates = LlamaTokenDataArray(n_vocab=llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.config = config
        self.max_sequences = config.max_sequences
        self._lora = None
        # What each KV stream still holds from its last sequence, reused by a prompt that starts alike.
        self._cached: list[list[int]] = [[] for _ in range(config.max_sequences)]
        self._shares = metrics.ShareGauges(config.model)
        super().__init__("llama-cpp-engine")

    # --- the engine thread -----------------------------------------------------------------------

    def _new_context(self):
        params = llama_cpp.llama_context_default_params()
        cfg = self.config
        params.n_seq_max = cfg.max_sequences
        params.n_ctx = cfg.n_ctx * cfg.max_sequences
        params.kv_unified = False  # one KV stream of n_ctx per sequence
        params.n_batch = cfg.n_batch
        params.n_ubatch = cfg.n_batch
        params.n_threads = cfg.n_threads
        params.n_threads_batch = cfg.n_threads_batch or cfg.n_threads
        params.offload_kqv = cfg.offload_kqv
        params.flash_attn = cfg.flash_attn
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create the engine's context")
        if cfg.lora_path:
            self._lora = llama_cpp.llama_adapter_lora_init(self._model, str(cfg.lora_path).encode())
            if not self._lora or llama_cpp.llama_set_adapter_lora(ctx, self._lora, 1.0) != 0:
                raise RuntimeError(f"llama.cpp could not load the LoRA adapter {cfg.lora_path}")
        return ctx

    def _run(self) -> None:
        try:
            self._ctx = self._new_context()
            self._memory = llama_cpp.llama_get_memory(self._ctx)
            self._batch = llama_cpp.llama_batch_init(self.config.n_batch, 0, 1)
            self._warm_up()
        except BaseException as exc:  # reported to the constructor's caller
            self._started(exc)
            return
        self._started()
        slots: list[_Slot] = []  # holding a KV stream
        waiting: list[_Slot] = []  # for a slot: new, or preempted
        free_ids = list(range(self.config.max_sequences))
        try:
            while True:
                with self._wake:
                    if not self._wait_for_work(bool(slots or waiting)):
                        break
                if not slots:  # idle: the jobs sent together start together
                    self._gather()
                with self._wake:
                    while self._incoming:
                        slot = self._arrive(self._incoming.popleft())
                        if slot is not None:
                            waiting.append(slot)
                for slot in [s for s in waiting if s.seq.cancelled.is_set()]:
                    waiting.remove(slot)
                    self._end_waiting(
                        slot, GenerationResult("cancelled", len(slot.seq.prompt), slot.generated)
                    )
                for slot in [s for s in slots if s.seq.cancelled.is_set()]:
                    self._finish(slot, "cancelled", slots, free_ids)
                if waiting:
                    self._share_slots(slots, waiting, free_ids)
                self._shares.update([s.seq.share for s in slots], [s.seq.share for s in waiting])
                if slots:
                    self._step(slots, free_ids)
        finally:
            for slot in list(slots):
                self._fail(slot, RuntimeError("the engine stopped"), slots, free_ids)
            for slot in waiting:
                self._end_waiting(slot, RuntimeError("the engine stopped"))
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            if self._lora:
                llama_cpp.llama_adapter_lora_free(self._lora)

    def _warm_up(self) -> None:
        """Decode one token and forget it: the first decode of a context is slow (buffers, caches),
        and it should not be the first job's."""
        self._put(0, llama_cpp.llama_vocab_bos(self._vocab), 0, 0, True)
        self._batch.n_tokens = 1
        llama_cpp.llama_decode(self._ctx, self._batch)
        llama_cpp.llama_memory_seq_rm(self._memory, 0, -1, -1)

    def _arrive(self, seq: Sequence) -> _Slot | None:
        """A new sequence, waiting for a slot; one whose sampler cannot be built (a grammar llama.cpp
        refuses) fails at once."""
        try:
            sampler = sampler_chain(self._model, seq.sampling, seq.prompt, seq.resumed)
        except Exception as exc:
            seq.events.put(exc)
            return None
        metrics.PROMPT_TOKENS.labels(self.config.model).inc(len(seq.tokens))
        return _Slot(seq, None, sampler)

    def _share_slots(self, slots: list[_Slot], waiting: list[_Slot], free_ids: list[int]) -> None:
        """Give the slots to those the sharing policy chooses: preempt the running ones it does not,
        then start the waiting ones it does, in arrival order."""
        chosen = slot_holders([(slot, slot.claim) for slot in slots + waiting], self.config.max_sequences)
        for slot in [s for s in slots if s not in chosen]:
            self._preempt(slot, slots, free_ids)
            waiting.append(slot)
        for slot in sorted((s for s in waiting if s in chosen), key=lambda s: s.seq.order):
            waiting.remove(slot)
            self._place(slot, free_ids, [s.seq_id for s in slots])
            slots.append(slot)

    def _place(self, slot: _Slot, free_ids: list[int], active_ids: list[int]) -> None:
        """Start (or resume) a sequence in the free KV stream that holds the longest reusable start of
        its target (prefix reuse: a character's pinned prompt, a conversation's earlier turns, a
        preempted sequence's own stream); when none does, in one that keeps the running streams
        contiguous, the least recently used among those (`_stream_choice`). Only the rest is
        prefilled; a prompt's last token always is, for its logits."""
        seq_id = _stream_choice(free_ids, active_ids, lambda i: self._reusable(i, slot.target))
        free_ids.remove(seq_id)
        keep = self._reusable(seq_id, slot.target)
        if not keep or not llama_cpp.llama_memory_seq_rm(self._memory, seq_id, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._memory, seq_id, -1, -1)  # never fails
            keep = 0
        self._cached[seq_id] = []
        if not slot.preempted:  # a refill's tokens were counted at its first start
            metrics.PROMPT_TOKENS_REUSED.labels(self.config.model).inc(keep)
        metrics.ACTIVE_SEQUENCES.labels(self.config.model).inc()
        slot.seq_id, slot.fed, slot.kv_tokens = seq_id, keep, slot.target[:keep]
        slot.seq.running = True

    def _preempt(self, slot: _Slot, slots: list[_Slot], free_ids: list[int]) -> None:
        """Take the sequence's slot (it waits for another): it keeps its sampler and its text, and will
        refill what its stream holds now, which stays there for reuse until another takes it."""
        slot.target = slot.kv_tokens if slot.next_token is not None else slot.seq.tokens
        slot.preempted = True
        slots.remove(slot)
        metrics.ACTIVE_SEQUENCES.labels(self.config.model).dec()
        metrics.PREEMPTIONS.labels(self.config.model).inc()
        self._cached[slot.seq_id] = slot.kv_tokens
        free_ids.append(slot.seq_id)
        slot.seq_id, slot.fed, slot.kv_tokens = None, 0, []
        slot.seq.running = False

    def _end_waiting(self, slot: _Slot, event: GenerationResult | BaseException) -> None:
        """End a sequence that holds no slot (cancelled or failed while it waited)."""
        llama_cpp.llama_sampler_free(slot.sampler)
        slot.seq.events.put(event)

    def _reusable(self, seq_id: int, prompt: list[int]) -> int:
        """How many of the prompt's first tokens (a resumed reply's after them) stream `seq_id` holds
        and would not prefill again."""
        keep = min(_common_prefix(self._cached[seq_id], prompt), len(prompt) - MIN_FEED)
        return keep if keep >= MIN_REUSE else 0

    def _step(self, slots: list[_Slot], free_ids: list[int]) -> None:
        """Decode one batch: a token of every decoding sequence, and prompt chunks in arrival order
        with what room is left. The batch holds them in stream order: llama.cpp decodes a batch over
        several KV streams in one pass only for streams in increasing, consecutive order, and splits it
        into a pass per run otherwise (`llama_batch_allocr::split_equal`)."""
        batch = self._batch
        n = 0
        prompts = 0  # whose prefill this batch ends
        outputs: list[tuple[_Slot, int]] = []  # (slot, batch index of its logits)
        for slot, count in _step_plan(slots, self.config.n_batch):
            if not slot.prefilling:
                self._put(n, slot.next_token, len(slot.kv_tokens), slot.seq_id, True)
                slot.kv_tokens.append(slot.next_token)
                outputs.append((slot, n))
                n += 1
                continue
            target = slot.target
            for i in range(slot.fed, slot.fed + count):
                # A prompt's last token gives the first token; a refill's next token is sampled already.
                last = i == len(target) - 1 and slot.next_token is None
                self._put(n, target[i], i, slot.seq_id, last)
                if last:
                    outputs.append((slot, n))
                    prompts += 1
                n += 1
            slot.kv_tokens += target[slot.fed : slot.fed + count]
            slot.fed += count
        batch.n_tokens = n
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            error = RuntimeError(f"llama_decode failed ({status})")
            for slot, _ in outputs:
                self._fail(slot, error, slots, free_ids)
            for slot in [s for s in slots if s.prefilling]:
                self._fail(slot, error, slots, free_ids)
            return
        if prompts:
            metrics.PROMPTS_PER_PASS.labels(self.config.model).observe(prompts)
        for slot, index in outputs:
            try:
                self._sample(slot, index, slots, free_ids)
            except Exception as exc:  # one sequence's failure is its own
                log.exception("sequence %d failed", slot.seq_id)
                self._fail(slot, exc, slots, free_ids)

    def _put(self, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = logits

    def _sample(self, slot: _Slot, index: int, slots: list[_Slot], free_ids: list[int]) -> None:
        top_n = slot.seq.sampling.logprobs
        if top_n is not None:
            logprobs = step_logprobs(self._ctx, index, llama_cpp.llama_vocab_n_tokens(self._vocab))
        token = sample_token(slot.sampler, self._ctx, index, self._candidates, slot.greedy)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop", slots, free_ids)
            return
        if top_n is not None:
            slot.logprobs.append(token_logprob(logprobs, token, top_n, self._piece))
        slot.generated += 1
        slot.next_token = token
        text = slot.decoder.decode(self._piece(token))
        self._emit(slot, *slot.reply.add(token, text, whole=not slot.decoder.getstate()[0]))
        if slot.reply.stopped:
            self._finish(slot, "stop", slots, free_ids)
            return
        if slot.generated >= slot.seq.max_tokens:
            self._finish(slot, "length", slots, free_ids)

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if size < 0:
            buf = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[:size]

    def _emit(self, slot: _Slot, text: str, token_ids: list[int]) -> None:
        if text:
            logprobs = None
            if slot.seq.sampling.logprobs is not None:
                logprobs, slot.logprobs = slot.logprobs[: len(token_ids)], slot.logprobs[len(token_ids) :]
            slot.seq.events.put(TextPiece(text, token_ids, logprobs))

    def _finish(self, slot: _Slot, reason: str, slots: list[_Slot], free_ids: list[int]) -> None:
        if reason != "cancelled":
            self._emit(slot, *slot.reply.rest(slot.decoder.decode(b"", final=True)))
        self._release(slot, slots, free_ids)
        slot.seq.events.put(GenerationResult(reason, len(slot.seq.prompt), slot.generated))

    def _fail(self, slot: _Slot, error: BaseException, slots: list[_Slot], free_ids: list[int]) -> None:
        slot.kv_tokens = []  # after a failed decode the stream's contents are unknown
        self._release(slot, slots, free_ids)
        slot.seq.events.put(error)

    def _release(self, slot: _Slot, slots: list[_Slot], free_ids: list[int]) -> None:
        """Free the slot; its KV stream keeps what it holds for a later prompt that starts alike."""
        slots.remove(slot)
        metrics.ACTIVE_SEQUENCES.labels(self.config.model).dec()
        if not slot.kv_tokens:
            llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        self._cached[slot.seq_id] = slot.kv_tokens
        llama_cpp.llama_sampler_free(slot.sampler)
        free_ids.append(slot.seq_id)


def _common_prefix(a: list[int], b: list[int]) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


def _step_plan(slots: list[_Slot], n_batch: int) -> list[tuple[_Slot, int]]:
    """What a step feeds, in stream order: (slot, tokens) for every decoding sequence (its next
    token) and, with the room left in `n_batch`, a chunk of each waiting prompt in arrival order, one
    that leaves no single token for the prompt's last chunk (`MIN_FEED`)."""
    room = n_batch - sum(1 for slot in slots if not slot.prefilling)
    plan = []
    for slot in slots:
        if not slot.prefilling:
            plan.append((slot, 1))
        elif room > 0:
            left = len(slot.target) - slot.fed
            chunk = min(left, room)
            if 0 < left - chunk < MIN_FEED and chunk > MIN_FEED:
                chunk -= MIN_FEED - (left - chunk)
            plan.append((slot, chunk))
            room -= chunk
    return sorted(plan, key=lambda entry: entry[0].seq_id)


def _stream_choice(free_ids: list[int], active_ids: list[int], reusable) -> int:
    """The free stream with the most reusable prompt tokens; among equals, the one that leaves the
    fewest runs of consecutive active streams (each run costs the step another pass over the
    weights), then the least recently freed (`free_ids` is in the order streams were freed)."""
    rank = {seq_id: order for order, seq_id in enumerate(free_ids)}
    return max(free_ids, key=lambda i: (reusable(i), -_runs([*active_ids, i]), -rank[i]))


def _runs(ids: list[int]) -> int:
    """How many runs of consecutive numbers `ids` makes: [0, 1, 3] makes 2."""
    present = set(ids)
    return sum(1 for i in present if i - 1 not in present)
