"""How the llama.cpp engine lays out a decode step and picks a KV stream for a new sequence.

llama.cpp decodes a batch over several KV streams in one pass over the weights only when the batch
holds them in increasing, consecutive order; otherwise it splits the step into a pass per run
(measured: 8 sequences in shuffled streams made 25-42 tokens/s, in order 80)."""

from runtimes.llama_cpp_engine import _Slot, _step_plan, _stream_choice
from runtimes.sequences import Sequence
from schemas.jobs import SamplingParams


def slot(seq_id: int, prompt: int, fed: int) -> _Slot:
    sequence = Sequence(list(range(prompt)), SamplingParams(max_tokens=16), max_tokens=16)
    made = _Slot(sequence, seq_id, sampler=None)
    made.fed = fed
    return made


def test_a_step_holds_its_sequences_in_stream_order_whatever_order_they_came_in() -> None:
    arrived = [slot(5, 10, 10), slot(2, 10, 10), slot(7, 300, 0), slot(3, 10, 10), slot(4, 50, 20)]

    plan = _step_plan(arrived, n_batch=512)

    assert [(s.seq_id, count) for s, count in plan] == [(2, 1), (3, 1), (4, 30), (5, 1), (7, 300)]


def test_decoding_sequences_come_first_and_prompts_share_the_room_left_in_arrival_order() -> None:
    waiting_first, waiting_next = slot(0, 400, 0), slot(1, 400, 0)
    decoding = [slot(i, 10, 10) for i in (2, 3, 4)]

    plan = dict(((s.seq_id, count) for s, count in _step_plan([waiting_first, waiting_next, *decoding], 256)))

    assert plan == {0: 253, 2: 1, 3: 1, 4: 1}  # the second prompt waits for the next step


def test_a_prompt_is_never_left_with_a_last_chunk_of_one_token() -> None:
    # llama.cpp computes a one-token batch with other kernels: the last token's logits would differ.
    (only,) = _step_plan([slot(0, 513, 0)], n_batch=512)

    assert only[1] == 511  # 2 left for the next step, not 1


def test_a_new_sequence_takes_a_stream_that_keeps_the_running_ones_contiguous() -> None:
    nothing_reusable = lambda seq_id: 0  # noqa: E731

    # Streams 1 and 2 run; 6 was freed longest ago but would open a second run; 3 extends the run.
    assert _stream_choice([6, 3, 0], [1, 2], nothing_reusable) == 3
    # Both 0 and 3 extend it: the one freed longest ago (its cached prompt the least likely to return).
    assert _stream_choice([0, 3], [1, 2], nothing_reusable) == 0
    # Nothing runs: every stream is as good, so the least recently freed one.
    assert _stream_choice([4, 0, 7], [], nothing_reusable) == 4
    # Closing a gap beats extending a run.
    assert _stream_choice([3, 6], [1, 2, 4, 5], nothing_reusable) == 3


def test_a_reusable_prefix_wins_over_keeping_streams_contiguous() -> None:
    holds_the_card = {6: 700}

    assert _stream_choice([6, 3], [1, 2], lambda seq_id: holds_the_card.get(seq_id, 0)) == 6
