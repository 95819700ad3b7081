"""What the batching engines (llama.cpp's, transformers') share: a job's `Sequence` and the events it
yields, the thread that runs an engine's decode loop and the callers' side of it (submit, follow,
cancel), and a reply's text held back where it may begin a stop string.

Callers (Celery task threads) submit a `Sequence` and read its events from a queue, so publishing a
token (a Redis round trip) never holds up the loop, which serves every sequence at once.
"""

import queue
import threading
from collections import deque
from dataclasses import dataclass, field

from runtimes.protocol import GenerationResult, OnText
from schemas.events import TokenLogprob


@dataclass
class TextPiece:
    text: str
    tokens: int  # how many generated tokens this text completes
    logprobs: list[TokenLogprob] | None = None  # theirs, when the job asked for logprobs


@dataclass
class Sequence:
    """One job's generation, shared by the engine (which fills `events`) and the task that waits on it."""

    prompt: list[int]
    sampling: object  # schemas.jobs.SamplingParams
    max_tokens: int
    events: "queue.SimpleQueue[TextPiece | GenerationResult | BaseException]" = field(
        default_factory=queue.SimpleQueue
    )
    cancelled: threading.Event = field(default_factory=threading.Event)


class EngineThread:
    """An engine's decode loop on its own thread, and the callers' side of it.

    A subclass sets up what its `_run` needs, then calls `__init__`, which starts the thread and
    returns once `_run` has called `_started` (raising what stopped it from starting). `_run` takes
    new sequences from `_incoming` under `_wake`, and ends when `_stopping` is set."""

    def __init__(self, thread_name: str) -> None:
        self._incoming: deque[Sequence] = deque()
        self._wake = threading.Condition()
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

    def submit(self, seq: Sequence) -> Sequence:
        with self._wake:
            self._incoming.append(seq)
            self._wake.notify()
        return seq

    def wake(self) -> None:
        """Let the loop notice a cancel flag even when it is idle."""
        with self._wake:
            self._wake.notify()

    def follow(self, seq: Sequence, on_text: OnText) -> GenerationResult:
        """Pass a submitted sequence's text to `on_text` until it ends; False from `on_text` cancels it.

        A cancelled sequence's usage counts the tokens published before the cancel."""
        published = 0
        while True:
            event = seq.events.get()
            if isinstance(event, TextPiece):
                if seq.cancelled.is_set():
                    continue
                published += event.tokens
                sent = on_text(event.text) if event.logprobs is None else on_text(event.text, event.logprobs)
                if not sent:
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


class ReplyText:
    """A reply's text as its tokens complete it. A tail that may begin a stop string is held back, so
    a stop string never reaches the client (as with OpenAI): the text before it does, and the reply
    ends there."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.held = ""
        self.stopped = False  # a stop string was reached

    def add(self, text: str) -> str:
        """What can be sent now that `text` follows; check `stopped` after."""
        self.held += text
        stop_at = min((i for i in (self.held.find(s) for s in self.stops) if i >= 0), default=-1)
        if stop_at >= 0:
            ready, self.held, self.stopped = self.held[:stop_at], "", True
            return ready
        keep = _stop_prefix_length(self.held, self.stops)
        ready, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        return ready

    def rest(self, tail: str = "") -> str:
        """What was held back, and `tail`: the reply's end when no stop string ended it."""
        return "" if self.stopped else self.held + tail


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """The length of the longest end of `text` that could begin a stop string (held back for now)."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best
