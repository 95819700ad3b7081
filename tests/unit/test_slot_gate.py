"""Which waiting job a worker gives back to its queue (workers/slot_gate.py): only when every extra
thread holds a waiting job, and then the one that came last, so earlier ones keep their turn."""

from contextlib import ExitStack

from workers.slot_gate import _Waiting


def test_only_the_last_of_a_full_set_of_waiting_jobs_gives_way() -> None:
    waiting = _Waiting()
    with ExitStack() as entered:
        for job in ("j1", "j2", "j3"):
            entered.enter_context(waiting.entered(job))
        not_full = [waiting.gives_way(job, threads=4) for job in ("j1", "j2", "j3")]
        entered.enter_context(waiting.entered("j4"))
        full = [waiting.gives_way(job, threads=4) for job in ("j1", "j2", "j3", "j4")]

    assert not_full == [False, False, False]
    assert full == [False, False, False, True]


def test_a_job_that_leaves_makes_room_for_the_others() -> None:
    waiting = _Waiting()
    with waiting.entered("j1"), waiting.entered("j2"):
        with waiting.entered("j3"):
            pass
        assert not waiting.gives_way("j2", threads=3)
        assert waiting.gives_way("j2", threads=2)
