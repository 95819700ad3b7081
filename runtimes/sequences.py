"""What the batching engines (llama.cpp's, transformers') share: a job's `Sequence` and the events it
yields, the thread that runs an engine's decode loop and the callers' side of it (submit, follow,
cancel, a resumed reply's start), and a reply's text held back where it may begin a stop string.

Callers (Celery task threads) submit a `Sequence` and read its events from a queue, so publishing a
token (a Redis round trip) never holds up the loop, which serves every sequence at once.
"""

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from runtimes.fair_share import Claim, Share, slot_holders
from runtimes.protocol import GenerationResult, OnText, PromptTooLongError, Resume, text_sink
from schemas.events import TokenLogprob
from schemas.jobs import ChatMessage, SamplingParams

# The longest an idle engine waits for the jobs on their way to it (`_gather`), and how often it
# looks again at its queue meanwhile.
GATHER_S = 0.05
ARRIVAL_POLL_S = 0.005
# How often a sequence that streams nothing (waiting for a slot) checks that its job still wants it.
IDLE_CHECK_S = 1.0


@dataclass
class TextPiece:
    text: str
    token_ids: list[int]  # the generated tokens whose text this piece completes
    logprobs: list[TokenLogprob] | None = None  # theirs, when the job asked for logprobs


@dataclass
class Sequence:
    """One job's generation, shared by the engine (which fills `events`) and the task that waits on it.

    A resumed one starts with its reply's first tokens: the engine prefills them after the prompt (its
    `tokens`) and counts them as generated (`max_tokens` is the whole reply's). Its `share` says whose
    slot it takes when slots are shared out (runtimes/fair_share.py); `order` is its place in arrival
    order, set when it is submitted."""

    prompt: list[int]
    sampling: object  # schemas.jobs.SamplingParams
    max_tokens: int
    resume: Resume | None = None
    share: Share = field(default_factory=lambda: Share(""))
    order: int = 0
    running: bool = False  # it holds a slot now (set by the engine)
    events: "queue.SimpleQueue[TextPiece | GenerationResult | BaseException]" = field(
        default_factory=queue.SimpleQueue
    )
    cancelled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.resumed: list[int] = list(self.resume.token_ids) if self.resume else []
        self.tokens = self.prompt + self.resumed  # what the engine prefills
        self.resumed_text = self.resume.text if self.resume else ""


@dataclass
class _Place:
    """A slot held for the sequence a task thread is about to submit (`EngineThread.slot_for`)."""

    share: Share
    order: int
    running: bool = False


class EngineThread:
    """An engine's decode loop on its own thread, and the callers' side of it.

    A subclass sets up what its `_run` needs, then calls `__init__`, which starts the thread and
    returns once `_run` has called `_started` (raising what stopped it from starting). `_run` takes
    new sequences from `_incoming` under `_wake`, and ends when `_stopping` is set. An engine that
    `preempts` shares its slots out between keys (runtimes/fair_share.py); one that does not starts
    sequences in arrival order as slots free."""

    preempts = False
    max_sequences: int

    def __init__(self, thread_name: str) -> None:
        # Whether jobs are on their way to this engine, and how long it waits for them at most
        # (`_gather`); its worker says (`EngineRuntime.expect_arrivals`).
        self.arriving: Callable[[], bool] = _nothing_arriving
        self.gather_s = GATHER_S
        self._incoming: deque[Sequence] = deque()
        self._arrivals = itertools.count()
        # Submitted and not ended (or a place held for one), by arrival order.
        self._live: dict[int, Sequence | _Place] = {}
        self._places: dict[int, int] = {}  # task thread -> the order of the place it holds
        self._asking: dict[int, _Place] = {}  # places asked for by waiting threads, by arrival order
        lock = threading.RLock()
        self._wake = threading.Condition(lock)  # the engine's: work has come
        self._room = threading.Condition(lock)  # slot_for's: a sequence has ended
        self._stopping = False
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def _run(self) -> None:
        raise NotImplementedError

    def _started(self, error: BaseException | None = None) -> None:
        self._startup_error = error
        self._ready.set()

    def _wait_for_work(self, busy: bool) -> bool:
        """Under `_wake`: sleep while there is nothing to do; False once the engine is stopping."""
        while not self._stopping and not busy and not self._incoming:
            self._wake.wait()
        return not self._stopping

    def generate(
        self,
        prompt: list[int],
        sampling,
        n_ctx: int,
        on_text: OnText,
        resume: Resume | None,
        share: Share | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """A runtime's `generate` once it has the prompt's tokens: the reply, in at most what the
        window leaves; a resumed reply that has used that up already ends there."""
        room = n_ctx - len(prompt)
        if room < 1:
            raise PromptTooLongError(f"the prompt is {len(prompt)} tokens, the context window {n_ctx}")
        seq = Sequence(prompt, sampling, min(sampling.max_tokens, room), resume, share or Share(""))
        if len(seq.resumed) >= seq.max_tokens:
            return GenerationResult("length", len(prompt), len(seq.resumed))
        return self.follow(self.submit(seq), on_text, still_wanted)

    @contextmanager
    def slot_for(self, share: Share, poll_s: float, keep_waiting: Callable[[], bool]) -> Iterator[bool]:
        """Whether a sequence of `share` gets a slot: a free one, or, in an engine that preempts, one
        its key's fair share takes from another key's sequence. It waits for one while
        `keep_waiting()` (asked every `poll_s`) says so, in arrival order with the other waiting
        threads (after them within a key's share; an engine that does not preempt: after all of
        them). The slot is held for the sequence this thread submits next, until the block ends:
        threads of jobs received together never count the same free slot."""
        with self._wake:
            place = _Place(share, next(self._arrivals))
            self._asking[place.order] = place
        got = False
        try:
            while not got:
                with self._wake:
                    got = self._room.wait_for(lambda: self._has_room(place), poll_s)
                    if got:
                        del self._asking[place.order]
                        self._live[place.order] = place
                        self._places[threading.get_ident()] = place.order
                if not got and not keep_waiting():
                    break
        finally:
            if not got:
                self._forget(place)
        try:
            yield got
        finally:
            if got:
                self._forget(place)

    def _gather(self) -> None:
        """For an idle engine about to start what it was given (not holding `_wake`): wait up to
        `gather_s` while more is on its way, so that clients who sent at once are prefilled together:
        while jobs its worker has let in hold slots they have not submitted yet (their tasks are
        taking them: milliseconds), and while `arriving()` says jobs its queue has just admitted
        have not reached a worker yet (jobs/arrivals.py), asking again as each job comes and every
        ARRIVAL_POLL_S. A lone job waits for neither (one look at its queue)."""
        deadline = time.monotonic() + self.gather_s
        while True:
            with self._wake:
                self._wake.wait_for(lambda: not self._holds_places(), deadline - time.monotonic())
            left = deadline - time.monotonic()
            if left <= 0 or not self.arriving():
                return
            with self._wake:
                self._wake.wait(min(left, ARRIVAL_POLL_S))

    def _holds_places(self) -> bool:
        return any(isinstance(each, _Place) for each in self._live.values())

    def _forget(self, place: _Place) -> None:
        """A place no longer asked for, or held and not taken by a sequence: room for the others."""
        with self._wake:
            self._places.pop(threading.get_ident(), None)
            self._asking.pop(place.order, None)
            if self._live.get(place.order) is place:
                del self._live[place.order]
            self._room.notify_all()

    def _has_room(self, place: _Place) -> bool:
        others = [asking for asking in self._asking.values() if asking is not place]
        if not self.preempts:
            ahead = sum(1 for asking in others if asking.order < place.order)
            return len(self._live) + ahead < self.max_sequences
        everyone = [*self._live.values(), *others, place]
        claims = [(each, Claim(each.share, each.running, each.order)) for each in everyone]
        return place in slot_holders(claims, self.max_sequences)

    def submit(self, seq: Sequence) -> Sequence:
        with self._wake:
            held = self._places.pop(threading.get_ident(), None)
            seq.order = held if held is not None else next(self._arrivals)
            self._live[seq.order] = seq
            self._incoming.append(seq)
            self._wake.notify()
        return seq

    def wake(self) -> None:
        """Let the loop notice a cancel flag even when it is idle."""
        with self._wake:
            self._wake.notify()

    def follow(
        self, seq: Sequence, on_text: OnText, still_wanted: Callable[[], bool] | None = None
    ) -> GenerationResult:
        """Pass a submitted sequence's text to `on_text` until it ends; False from `on_text` cancels it,
        and so does False from `still_wanted()`, asked every IDLE_CHECK_S while no text comes (a
        sequence that waits for a slot, paused or not started yet, is cancelled without a token).

        A cancelled sequence's usage counts the tokens published before the cancel (a resumed one's
        included)."""
        try:
            return self._follow(seq, text_sink(on_text), still_wanted)
        finally:
            with self._wake:
                self._live.pop(seq.order, None)
                self._room.notify_all()

    def _follow(self, seq: Sequence, send, still_wanted: Callable[[], bool] | None) -> GenerationResult:
        published = len(seq.resumed)
        while True:
            try:
                event = seq.events.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                if still_wanted is not None and not seq.cancelled.is_set() and not still_wanted():
                    seq.cancelled.set()
                    self.wake()
                continue
            if isinstance(event, TextPiece):
                if seq.cancelled.is_set():
                    continue
                published += len(event.token_ids)
                if not send(event.text, event.logprobs, event.token_ids):
                    seq.cancelled.set()
                    self.wake()
            elif isinstance(event, GenerationResult):
                if seq.cancelled.is_set():
                    return GenerationResult("cancelled", event.prompt_tokens, published)
                return event
            else:
                raise event

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()


def _nothing_arriving() -> bool:
    return False


class ReplyText:
    """A reply's text as its tokens complete it, and which tokens each piece sent completes.

    A tail that may begin a stop string is held back, so a stop string never reaches the client (as
    with OpenAI): the text before it does, and the reply ends there. Otherwise text is sent up to the
    end of a token's text only (a token whose bytes end inside a character ends with that character),
    so the text sent so far is always the text of the tokens reported so far, and a resumed reply
    (`sent`: its text) continues from a token, never from inside one. Held back, a token waits for
    the later piece that completes it."""

    def __init__(self, stops: list[str], sent: str = "") -> None:
        self.stops = [stop for stop in stops if stop]
        self.text = sent  # the reply's text decoded so far
        self.sent = len(sent)  # how much of it was sent
        self.unsent: list[int] = []  # tokens not reported yet, in order
        self.ends: list[int] = []  # where the text of each of the first of them ends (in `text`)
        self.stopped = False  # a stop string was reached

    def add(self, token: int, text: str, whole: bool = True) -> tuple[str, list[int]]:
        """What can be sent now that `token` decoded to `text` (`whole`: its bytes ended a character;
        else `text` holds what its bytes completed, and it ends with a later token), and the tokens
        that text completes; check `stopped` after."""
        self.text += text
        self.unsent.append(token)
        if whole:
            self.ends += [len(self.text)] * (len(self.unsent) - len(self.ends))
        held = self.text[self.sent :]
        stop_at = min((i for i in (held.find(s) for s in self.stops) if i >= 0), default=-1)
        if stop_at >= 0:
            self.stopped = True
            return self._release(self.sent + stop_at)
        limit = len(self.text) - _stop_prefix_length(held, self.stops)
        return self._release(max((end for end in self.ends if end <= limit), default=self.sent))

    def rest(self, tail: str = "") -> tuple[str, list[int]]:
        """What was held back and `tail` (the reply's end when no stop string ended it), and every
        token not reported yet."""
        if self.stopped:
            return "", []
        self.text += tail
        self.ends = [len(self.text)] * len(self.unsent)
        return self._release(len(self.text))

    def _release(self, end: int) -> tuple[str, list[int]]:
        """The text up to `end` not sent yet, and the tokens it completes; tokens without text wait
        for the next piece."""
        if end <= self.sent:
            return "", []
        done = sum(1 for token_end in self.ends if token_end <= end)
        tokens, self.unsent, self.ends = self.unsent[:done], self.unsent[done:], self.ends[done:]
        text, self.sent = self.text[self.sent : end], end
        return text, tokens


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """The length of the longest end of `text` that could begin a stop string (held back for now)."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best


class EngineRuntime:
    """A runtime whose replies come from an engine (llama.cpp's, transformers'), made on first use:
    the prompt is its chat template over its tokenizer, the rest the engine's. Subclasses give
    `_template`, `text_tokens`, `_new_engine`, `_engine_lock` and `n_ctx`."""

    _engine = None
    _arriving: Callable[[], bool] | None = None

    def expect_arrivals(self, arriving: Callable[[], bool]) -> None:
        """Let the engine ask `arriving()` whether more jobs are on their way before it starts one alone
        (`EngineThread._gather`)."""
        with self._engine_lock:
            self._arriving = arriving
            if self._engine is not None:
                self._engine.arriving = arriving

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        return self._template.tokens(messages, lambda text, markup: self.text_tokens(text, special=markup))

    def slot_for(
        self, share: Share, poll_s: float, keep_waiting: Callable[[], bool]
    ) -> AbstractContextManager[bool]:
        return self.engine().slot_for(share, poll_s, keep_waiting)

    def engine(self):
        with self._engine_lock:
            if self._engine is None:
                self._engine = self._new_engine()
                if self._arriving is not None:
                    self._engine.arriving = self._arriving
            return self._engine

    def close_engine(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: SamplingParams,
        on_text: OnText,
        resume: Resume | None = None,
        share: Share | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        return self.engine().generate(
            self.prompt_tokens(messages), sampling, self.n_ctx, on_text, resume, share, still_wanted
        )
