"""Answering a completion request of any API (OpenAI's chat and text completions, llama-server's
`/completion`): start every choice's job, then stream the writer's lines or send its whole answer."""

from sse_starlette import EventSourceResponse
from starlette.responses import JSONResponse, Response

from api.http.dependencies import ChatCall
from api.http.disconnect import CLIENT_CLOSED_REQUEST, unless_disconnected
from api.openai.choices import ChoiceWriter
from api.streams.job_start import start_job
from api.streams.relay import JobStream
from model_registry import ModelSpec
from schemas.jobs import ChatJob


async def answer(
    call: ChatCall,
    spec: ModelSpec,
    jobs: list[ChatJob],
    writer: ChoiceWriter,
    stream: bool,
    include_usage: bool = False,
) -> Response:
    """Start the jobs and answer with their stream (SSE) or, once all have ended, the whole answer."""
    streams = await _start_jobs(call, spec, jobs)
    # X-Job-Id: the first choice's job (its log: GET /jobs/{id}); X-Job-Ids: every choice's, in order.
    headers = {"X-Job-Id": jobs[0].job_id, "X-Job-Ids": ",".join(job.job_id for job in jobs)}
    if stream:
        return EventSourceResponse(writer.chunks(streams, include_usage), headers=headers)
    whole = await unless_disconnected(call.request, writer.completion(streams))
    if whole is None:  # the client has gone, and with it the job
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return JSONResponse(whole.model_dump(), headers=headers)


async def _start_jobs(call: ChatCall, spec: ModelSpec, jobs: list[ChatJob]) -> list[JobStream]:
    """Start every choice's job, or none: a refusal (429, 400) cancels those already started."""
    streams: list[JobStream] = []
    try:
        for job in jobs:
            streams.append(await start_job(call, spec, job, detach=False))
    except BaseException:
        for stream in streams:
            await stream.close()
        raise
    return streams
