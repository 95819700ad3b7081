"""The broker's visibility timeout outlasts the longest job of every queue, so a running job is never
handed out twice (a run longer than it, on a stack of its own: tests/test_long_jobs.py)."""

from celeryconfig import longest_job_s, visibility_timeout_s
from settings import Settings


def test_the_visibility_timeout_is_above_the_longest_job_of_every_queue() -> None:
    settings = Settings(longest_job_s={"cpu": 7200}, longest_training_job_s=36_000)

    assert longest_job_s(settings, "cpu") == 7200
    assert longest_job_s(settings, settings.training_queue) == 36_000
    assert visibility_timeout_s(settings) > 36_000
    assert visibility_timeout_s(Settings(broker_visibility_timeout_s=5)) == 5
