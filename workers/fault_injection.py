"""A fault for the tests of takeover's cap (tests/test_takeover.py): a job whose prompt holds the
marker named by CHATBOT_TEST_KILL_AT (`<marker>:<k>`) kills its worker process when its reply
reaches token k, before publishing it, however often it is taken over: poison input. Unset (always,
outside those tests), it costs an environment lookup per token."""

import os
import signal

from schemas.jobs import ChatJob

ENV = "CHATBOT_TEST_KILL_AT"


def before_token(job: ChatJob, index: int) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    marker, _, at = spec.rpartition(":")
    if index >= int(at) and any(marker in message.content for message in job.messages):
        os.kill(os.getpid(), signal.SIGKILL)
