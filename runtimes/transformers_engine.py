"""Continuous batching for one transformers model: one decode loop over every active sequence.

Each step of the loop (its own thread, runtimes/sequences.py) prefills the prompts waiting
to start, together in one forward pass (left-padded, up to `PREFILL_TOKENS` padded tokens; those
submitted during it in a next pass, within the same budget), and then decodes the next token of
every decoding sequence in one forward pass. The decoding sequences share
one KV cache (a `DynamicCache`, a row per sequence): each row holds its sequence's tokens at its
right end, left-padded to the longest, and the attention mask hides the padding; each token's
position id is its place in its own sequence, so neither RoPE nor the sliding-window layers see the
padding. Prefilled prompts' rows join the batch (the narrower side is padded on the left); a sequence
that finishes, is cancelled or fails leaves at once, and the columns no row needs any more are cut.
Each sequence picks its token with its own processors and generator
(runtimes/transformers_sampling.py).

Why not transformers' `ContinuousBatchingManager`: its sampling is one `GenerationConfig` for every
request (temperature, top-k and top-p per request at most: no seed, penalty, logit bias, logprobs or
stop string of a job's own); on this CPU it was no faster (README).
"""

import inspect
import logging

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from runtimes import metrics
from runtimes.logprobs import token_logprob
from runtimes.protocol import GenerationResult
from runtimes.sequences import EngineThread, ReplyText, Sequence, TextPiece
from runtimes.transformers_head import TOLERANCE, Float16Head
from runtimes.transformers_sampling import SequenceSampler

log = logging.getLogger(__name__)

# Padded prompt tokens a step prefills before its decode pass (one prompt at least, however long):
# clients that arrive together (a closed loop of equal requests does) get their first tokens after
# one pass, while a burst of long prompts holds the running streams for no more than about this many.
PREFILL_TOKENS = 512


class _Row:
    """The engine's side of a sequence: its row of the batch cache, its sampler and its text state."""

    def __init__(self, seq: Sequence, sampler: SequenceSampler) -> None:
        self.seq = seq
        self.sampler = sampler
        self.length = 0  # tokens in its row of the KV cache
        self.next_token: int | None = None  # sampled, not yet fed
        self.generated = len(seq.resumed)
        self.reply_tokens: list[int] = list(seq.resumed)
        self.reply = ReplyText(list(seq.sampling.stop), seq.resumed_text)
        self.logprobs: list = []  # of the generated tokens not reported yet


class TransformersEngine(EngineThread):
    def __init__(
        self,
        model,
        tokenizer,
        tokenizer_lock,
        stop_ids: list[int],
        max_sequences: int,
        name: str = "",
        head: Float16Head | None = None,
    ) -> None:
        """`tokenizer_lock` is held around each use of the tokenizer, which its other users share;
        `head`, when given, computes the logits after the model's decoder (runtimes/transformers_head.py)."""
        self._model = model
        self._head = head
        self._tokenizer = tokenizer
        self._tokenizer_lock = tokenizer_lock
        self._stop_ids = set(stop_ids)
        self.max_sequences = max_sequences
        self._name = name  # the metrics' label
        self._n_vocab = model.config.get_text_config().vocab_size
        self._cache_arg = _cache_argument(model)
        self._decoder_cache_arg = _cache_argument(head.decoder) if head else ""
        self._pad_id = tokenizer.pad_token_id or 0  # under the attention mask: any token would do
        self._cache: DynamicCache | None = None  # the decoding rows' KV, a row each
        super().__init__("transformers-engine")

    def _run(self) -> None:
        rows: list[_Row] = []  # decoding, in the order of the cache's rows
        waiting: list[_Row] = []  # admitted, their prompts not prefilled yet
        with torch.inference_mode():
            try:
                self._warm_up(torch.tensor([[self._tokenizer.bos_token_id or 0] * 2]))
            except BaseException as exc:  # reported to the constructor's caller
                self._started(exc)
                return
            self._started()
            try:
                while True:
                    with self._wake:
                        if not self._wait_for_work(bool(rows or waiting)):
                            break
                        self._take_incoming(rows, waiting)
                    for row in [r for r in waiting if r.seq.cancelled.is_set()]:
                        waiting.remove(row)
                        self._finish(row, "cancelled")
                    self._leave(rows, [r for r in rows if not r.seq.cancelled.is_set()], "cancelled")
                    self._prefill_waiting(waiting, rows)
                    if rows:
                        self._decode(rows)
            finally:
                for row in rows + waiting:
                    self._fail(row, RuntimeError("the engine stopped"))

    def _take_incoming(self, rows: list[_Row], waiting: list[_Row]) -> None:
        """Admit submitted sequences into `waiting` while the engine has room (`_wake` held)."""
        while self._incoming and len(rows) + len(waiting) < self.max_sequences:
            row = self._admit(self._incoming.popleft())
            if row is not None:
                waiting.append(row)

    def _prefill_waiting(self, waiting: list[_Row], rows: list[_Row]) -> None:
        """This step's prefill: a pass over the waiting prompts, up to `PREFILL_TOKENS` padded tokens
        (one prompt at least), then one more over those submitted during it while that budget lasts,
        before the step's decode pass. Clients that send at once reach the engine over a few
        milliseconds: the first one's pass has begun when the others come, and without the second
        pass they would wait for a decode step too (README: "Many streams at once: the transformers
        engine"). Two passes at most, so that a trickle of newcomers cannot hold the running streams."""
        if waiting and not rows:
            self._gather()
            with self._wake:
                self._take_incoming(rows, waiting)
        first = _prefill_batch(waiting, PREFILL_TOKENS, at_least_one=True)
        if not first:
            return
        self._prefill(first, rows)
        with self._wake:
            self._take_incoming(rows, waiting)
        late = _prefill_batch(waiting, PREFILL_TOKENS - _padded_tokens(first), at_least_one=False)
        if late:
            self._prefill(late, rows)

    def _admit(self, seq: Sequence) -> _Row | None:
        """A sequence whose sampling cannot be applied (a token outside the vocabulary) fails here."""
        try:
            sampler = SequenceSampler(seq.sampling, self._n_vocab, seq.prompt, seq.resumed)
        except Exception as exc:
            seq.events.put(exc)
            return None
        metrics.PROMPT_TOKENS.labels(self._name).inc(len(seq.tokens))
        metrics.ACTIVE_SEQUENCES.labels(self._name).inc()
        return _Row(seq, sampler)

    def _warm_up(self, tokens: torch.Tensor) -> None:
        """A first pass over `tokens`; the float16 head is dropped unless its logits match the model's
        own (a model whose forward does more after its decoder than the head knows of would not)."""
        own = self._model_forward(tokens, DynamicCache())
        if self._head is None:
            return
        difference = (self._forward(tokens, DynamicCache()) - own).abs().max().item()
        if difference > TOLERANCE:
            log.warning("float16 output layer off by %.3g: using the model's own", difference)
            self._head = None

    def _forward(self, tokens: torch.Tensor, cache: DynamicCache, **kwargs) -> torch.Tensor:
        """The last position's logits of each row, on the CPU in float32; `cache` grows by `tokens`."""
        if self._head is None or not self._head.current():
            return self._model_forward(tokens, cache, **kwargs)
        output = self._head.decoder(
            input_ids=tokens, use_cache=True, **{self._decoder_cache_arg: cache}, **kwargs
        )
        return self._head(output.last_hidden_state[:, -1])

    def _model_forward(self, tokens: torch.Tensor, cache: DynamicCache, **kwargs) -> torch.Tensor:
        """`_forward` through the model's own output layer, on its device."""
        device = self._model.device
        kwargs = {name: value.to(device) for name, value in kwargs.items()}
        output = self._model(
            input_ids=tokens.to(device),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_arg: cache},
            **kwargs,
        )
        return output.logits[:, -1].float().cpu()

    def _prefill(self, new: list[_Row], rows: list[_Row]) -> None:
        """Prefill prompts (a resumed reply's tokens after theirs) in one pass, left-padded as the batch
        cache is; those that go on join it."""
        width = max(len(row.seq.tokens) for row in new)
        tokens = torch.full((len(new), width), self._pad_id)
        mask = torch.zeros(len(new), width, dtype=torch.long)
        positions = torch.zeros(len(new), width, dtype=torch.long)
        for i, row in enumerate(new):
            row.length = len(row.seq.tokens)
            tokens[i, width - row.length :] = torch.tensor(row.seq.tokens)
            mask[i, width - row.length :] = 1
            positions[i, width - row.length :] = torch.arange(row.length)
        cache = DynamicCache()
        try:
            logits = self._forward(tokens, cache, attention_mask=mask, position_ids=positions)
        except Exception as exc:  # these prompts' failure is their own
            log.exception("prefill failed")
            for row in new:
                self._fail(row, exc)
            return
        metrics.PROMPTS_PER_PASS.labels(self._name).observe(len(new))
        staying = []
        for i, row in enumerate(new):
            try:
                if self._take(row, logits[i]):
                    staying.append(i)
            except Exception as exc:
                log.exception("a sequence failed")
                self._fail(row, exc)
        if staying:
            _keep_rows(cache, staying, max(new[i].length for i in staying))
            self._join(cache)
            rows += [new[i] for i in staying]

    def _decode(self, rows: list[_Row]) -> None:
        """One step: the next token of every row, in one pass."""
        width = self._width()
        mask = torch.zeros(len(rows), width + 1, dtype=torch.long)
        for i, row in enumerate(rows):
            mask[i, width - row.length :] = 1
        tokens = torch.tensor([[row.next_token] for row in rows])
        positions = torch.tensor([[row.length] for row in rows])
        try:
            logits = self._forward(tokens, self._cache, attention_mask=mask, position_ids=positions)
        except Exception as exc:
            log.exception("decode step failed")
            for row in rows:
                self._fail(row, exc)
            rows.clear()
            self._cache = None
            return
        staying = []
        for i, row in enumerate(rows):
            row.length += 1
            try:
                if self._take(row, logits[i]):
                    staying.append(row)
            except Exception as exc:  # one sequence's failure is its own
                log.exception("a sequence failed")
                self._fail(row, exc)
        self._leave(rows, staying)

    def _take(self, row: _Row, logits: torch.Tensor) -> bool:
        """Pick the row's next token and pass on its text; False when the sequence has ended."""
        token = row.sampler(logits)
        if token in self._stop_ids:
            self._finish(row, "stop")
            return False
        top_n = row.seq.sampling.logprobs
        if top_n is not None:
            row.logprobs.append(token_logprob(row.sampler.recorder.last, token, top_n, self._piece))
        row.generated += 1
        row.next_token = token
        row.reply_tokens.append(token)
        text = self._text(row.reply_tokens)
        whole = not text.endswith("\ufffd")  # else a character is incomplete: wait for its other tokens
        self._emit(row, *row.reply.add(token, text[len(row.reply.text) :] if whole else "", whole))
        if row.reply.stopped:
            self._finish(row, "stop")
            return False
        if row.generated >= row.seq.max_tokens:
            self._finish(row, "length")
            return False
        return True

    def _piece(self, token: int) -> bytes:
        return self._text([token], skip_special_tokens=False).encode("utf-8")

    def _text(self, tokens: list[int], skip_special_tokens: bool = True) -> str:
        with self._tokenizer_lock:
            return self._tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    # --- the batch cache -------------------------------------------------------------------------

    def _width(self) -> int:
        return self._cache.layers[0].keys.shape[-2]

    def _join(self, cache: DynamicCache) -> None:
        """Add a prefilled prompt's cache as the last row, left-padding the narrower side."""
        if self._cache is None:
            self._cache = cache
            return
        width = max(self._width(), cache.layers[0].keys.shape[-2])
        for batch, new in zip(self._cache.layers, cache.layers, strict=True):
            batch.keys = torch.cat([_left_pad(batch.keys, width), _left_pad(new.keys, width)])
            batch.values = torch.cat([_left_pad(batch.values, width), _left_pad(new.values, width)])

    def _leave(self, rows: list[_Row], staying: list[_Row], reason: str | None = None) -> None:
        """Keep only `staying` of `rows` (in order) in the batch and its cache, finishing the others
        with `reason` when given (else they were finished already); cut the columns no row needs."""
        if len(staying) == len(rows):
            return
        if reason is not None:
            for row in rows:
                if row not in staying:
                    self._finish(row, reason)
        if not staying:
            self._cache = None
        else:
            kept = [i for i, row in enumerate(rows) if row in staying]
            _keep_rows(self._cache, kept, max(row.length for row in staying))
        rows[:] = staying

    # --- a sequence's end ------------------------------------------------------------------------

    def _emit(self, row: _Row, text: str, token_ids: list[int]) -> None:
        if text:
            logprobs = None
            if row.seq.sampling.logprobs is not None:
                logprobs, row.logprobs = row.logprobs[: len(token_ids)], row.logprobs[len(token_ids) :]
            row.seq.events.put(TextPiece(text, token_ids, logprobs))

    def _finish(self, row: _Row, reason: str) -> None:
        if reason != "cancelled":
            text = self._text(row.reply_tokens)
            self._emit(row, *row.reply.rest(text[len(row.reply.text) :]))
        metrics.ACTIVE_SEQUENCES.labels(self._name).dec()
        row.seq.events.put(GenerationResult(reason, len(row.seq.prompt), row.generated))

    def _fail(self, row: _Row, error: BaseException) -> None:
        metrics.ACTIVE_SEQUENCES.labels(self._name).dec()
        row.seq.events.put(error)


def _prefill_batch(waiting: list[_Row], budget: int, at_least_one: bool) -> list[_Row]:
    """The waiting prompts a prefill pass takes from `waiting`: in arrival order, up to `budget`
    padded tokens in all (with `at_least_one`, the first one whatever its length)."""
    taken: list[_Row] = []
    while waiting and (_padded_tokens([*taken, waiting[0]]) <= budget or (at_least_one and not taken)):
        taken.append(waiting.pop(0))
    return taken


def _padded_tokens(rows: list[_Row]) -> int:
    """The tokens of a prefill pass over `rows`' prompts, each left-padded to the longest."""
    return max(len(row.seq.tokens) for row in rows) * len(rows)


def _keep_rows(cache: DynamicCache, kept: list[int], width: int) -> None:
    """Keep only the rows `kept` of `cache`, and their last `width` columns."""
    for layer in cache.layers:
        index = torch.tensor(kept, device=layer.keys.device)
        layer.keys = layer.keys.index_select(0, index)[:, :, -width:]
        layer.values = layer.values.index_select(0, index)[:, :, -width:]


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """`tensor` ([batch, heads, tokens, dim]) with zeros before its tokens, `width` tokens in all."""
    return F.pad(tensor, (0, 0, width - tensor.shape[-2], 0)) if tensor.shape[-2] < width else tensor


def _cache_argument(model) -> str:
    """What the model's (or decoder's) forward calls its KV cache: `cache` in recent transformers 5
    releases, `past_key_values` before (and deprecated after)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"
