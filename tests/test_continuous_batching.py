"""One worker serves many streams at once (continuous batching: the llama.cpp engine, and the
transformers one for `llama`), through the whole stack: real Redis, the real worker with the real
Gemma GGUF, the API."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from httpx_sse import connect_sse

from tests.support.batches import dialogue_items, results, started, submit, wait_until_settled
from tests.support.metrics import samples, value
from tests.support.sse import iter_events
from tests.support.waiting import wait_until

REUSED = "chatbot_worker_prompt_tokens_reused_total"
ACTIVE = "chatbot_worker_active_sequences"
SLOTS = 8  # lumimaid's max_sequences (models.yaml)
QUESTIONS = [
    "Tell me about dragons.",
    "What is two plus two?",
    "Write a haiku about rain.",
    "Who are you?",
    "Name three fruits.",
    "Say hello in French.",
    "Describe a cat.",
    "What is the capital of Italy?",
]


def completion_body(question: str, max_tokens: int, model: str = "lumimaid") -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }


def stream_tokens(api: httpx.Client, body: dict, on_token=None) -> tuple[str, list[float], str]:
    """(job id, arrival time of each token, the text) of one streamed /v1 completion."""
    stamps: list[float] = []
    pieces: list[str] = []
    with connect_sse(api, "POST", "/v1/chat/completions", json=body) as source:
        assert source.response.status_code == 200
        job_id = source.response.headers["X-Job-Id"]
        for sse in iter_events(source):
            if sse.data == "[DONE]":
                break
            chunk = json.loads(sse.data)
            assert "choices" in chunk, f"the stream failed: {chunk}"
            choices = chunk["choices"]
            if choices and choices[0]["delta"].get("content"):
                stamps.append(time.monotonic())
                pieces.append(choices[0]["delta"]["content"])
                if on_token is not None:
                    on_token(job_id, len(pieces))
    return job_id, stamps, "".join(pieces)


def job(api: httpx.Client, job_id: str) -> dict:
    return api.get(f"/jobs/{job_id}").json()


def wait_engine_idle(stack, model: str = "lumimaid") -> None:
    """Until no sequence is in the worker's engine: a job an earlier test left ending (a cancelled
    detached chat) would share the decode steps with what must run alone."""
    metrics_url = f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics"
    wait_until(
        lambda: value(samples(httpx.get(metrics_url).text), ACTIVE, model=model),
        lambda active: active == 0,
        what="the engine to be idle",
    )


def test_eight_streams_at_once_all_finish_with_the_greedy_text_each_gets_alone(
    api: httpx.Client, stack
) -> None:
    def all_at_once() -> list[tuple[str, list[float], str]]:
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            return list(pool.map(lambda q: stream_tokens(api, completion_body(q, 24)), QUESTIONS))

    wait_engine_idle(stack)  # "alone" is alone; what earlier tests left in the slots' caches stays
    alone = [stream_tokens(api, completion_body(q, 24))[2] for q in QUESTIONS]
    together = all_at_once()

    jobs = [job(api, job_id) for job_id, _, _ in together]
    last_start = max(j["timings"]["started_at"] for j in jobs)
    first_end = min(j["timings"]["finished_at"] for j in jobs)

    batched = [text for _, _, text in together]
    # Bit for bit: with flash attention a token's values do not depend on what shares its decode
    # step or on what the other KV streams hold (README: "Same answer batched or alone").
    assert batched == alone
    assert all(j["state"] == "done" for j in jobs)
    assert len({j["worker"] for j in jobs}) == 1
    assert last_start < first_end  # all eight ran at once on the one worker


def test_llama_streams_at_once_all_finish_with_the_greedy_text_each_gets_alone(
    api: httpx.Client, stack
) -> None:
    """`llama` is the transformers runtime: its engine decodes every stream in one pass per step."""
    questions = QUESTIONS[:4]
    wait_engine_idle(stack, "llama")
    alone = [stream_tokens(api, completion_body(q, 16, "llama"))[2] for q in questions]
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda q: stream_tokens(api, completion_body(q, 16, "llama")), questions))

    jobs = [job(api, job_id) for job_id, _, _ in together]
    assert [text for _, _, text in together] == alone  # prompts prefilled alone, padding masked out
    assert all(j["state"] == "done" and j["usage"]["completion_tokens"] == 16 for j in jobs)
    # All four had their first token before any ended: none waited for another to finish.
    assert max(j["timings"]["first_token_at"] for j in jobs) < min(j["timings"]["finished_at"] for j in jobs)


def test_a_cancelled_stream_stops_within_a_few_tokens_while_the_others_go_on(api: httpx.Client) -> None:
    cancel_after = 3
    cancelled_at: dict[str, int] = {}

    def cancel_first(job_id: str, tokens: int) -> None:
        if tokens == cancel_after and not cancelled_at:
            cancelled_at[job_id] = tokens
            assert api.delete(f"/jobs/{job_id}").status_code == 202

    with ThreadPoolExecutor(3) as pool:
        victim = pool.submit(stream_tokens, api, completion_body(QUESTIONS[0], 200), cancel_first)
        time.sleep(0.5)  # the others join a running engine
        others = [pool.submit(stream_tokens, api, completion_body(q, 40)) for q in QUESTIONS[1:3]]
        victim_id, victim_stamps, _ = victim.result()
        other_results = [future.result() for future in others]

    stopped = job(api, victim_id)
    assert victim_id in cancelled_at
    assert stopped["state"] == "cancelled"
    assert stopped["usage"]["completion_tokens"] <= cancel_after + 5
    for job_id, stamps, _ in other_results:
        ended = job(api, job_id)
        assert ended["state"] == "done" and ended["finish_reason"] == "length"
        assert ended["usage"]["completion_tokens"] == len(stamps) == 40


def test_a_long_prompt_joining_midway_does_not_stall_the_running_streams(api: httpx.Client) -> None:
    running_tokens = 60
    long_prompt = completion_body("Summarize this. " + "The river flows past the old mill. " * 187, 4)
    started_streams = threading.Barrier(3)

    def note(_: str, tokens: int) -> None:
        if tokens == 3:
            started_streams.wait(timeout=300)

    with ThreadPoolExecutor(3) as pool:
        running = [
            pool.submit(stream_tokens, api, completion_body(q, running_tokens), note) for q in QUESTIONS[:2]
        ]
        started_streams.wait(timeout=300)  # both streams are producing tokens
        joined_at = time.monotonic()
        long_id, long_stamps, _ = pool.submit(stream_tokens, api, long_prompt).result()
        streams = [future.result()[1] for future in running]

    long_job = job(api, long_id)
    first_long_token = long_stamps[0]
    prefill_s = first_long_token - joined_at  # the long prompt's whole prefill (and its queueing)
    assert long_job["usage"]["prompt_tokens"] >= 1450
    for stamps in streams:
        assert len(stamps) == running_tokens
        during = [t for t in stamps if joined_at < t < first_long_token]
        # Chunked prefill: the running streams kept producing tokens while the long prompt was read,
        # and none of them waited as long as the whole prefill for its next token.
        assert len(during) >= 2
        window = [t for t in stamps if joined_at <= t] + [first_long_token]
        gaps = [later - earlier for earlier, later in zip([joined_at, *window], window, strict=False)]
        assert max(gaps) < prefill_s


def test_a_batch_runs_several_items_at_once_and_a_chat_goes_before_its_pending_items(
    api: httpx.Client, stack
) -> None:
    wait_engine_idle(stack)
    batch = submit(api, dialogue_items(50, max_tokens=40))
    # Every slot holds an item (the worker's first eight, taken a few milliseconds apart): what
    # starts from now on was pending when the chat came.
    wait_until(
        lambda: api.get(f"/batches/{batch['id']}").json(),
        lambda progress: progress["counts"]["running"] >= SLOTS,
        what="the batch to run an item in every slot",
    )
    submitted_at = datetime.now(UTC)
    chat_id, _, _ = stream_tokens(api, completion_body("Hello!", 4))
    chat_started = datetime.fromisoformat(job(api, chat_id)["timings"]["started_at"])

    wait_until_settled(api, batch["id"])
    starts = [started(line) for line in results(api, batch["id"])]

    pending_at_chat = [t for t in starts if t > submitted_at]
    assert pending_at_chat, "the batch ran too fast for the test to mean anything"
    # The chat takes the first slot that frees; an item may have been taken as the chat was enqueued.
    assert len([t for t in pending_at_chat if t < chat_started]) <= 1


def test_a_characters_pinned_prompt_is_reused_by_its_next_conversation(api: httpx.Client, stack) -> None:
    card = "You are Rachel, a devout girl who loves old books and the sound of rain. " * 40
    metrics_url = f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics"

    def conversation(opening: str) -> tuple[int, float]:
        """(prompt tokens of its first turn, prompt tokens the worker found in its cache meanwhile)"""
        before = value(samples(httpx.get(metrics_url).text), REUSED, model="lumimaid")
        body = completion_body(opening, 4) | {
            "stream": False,
            "messages": [{"role": "system", "content": card}, {"role": "user", "content": opening}],
        }
        usage = api.post("/v1/chat/completions", json=body).json()["usage"]
        return usage["prompt_tokens"], value(
            samples(httpx.get(metrics_url).text), REUSED, model="lumimaid"
        ) - before

    conversation("Hello, who are you?")
    prompt_tokens, reused = conversation("Good evening! What are you reading?")

    # Everything up to the user's new words came from the cache: the card is most of the prompt.
    assert reused >= 0.8 * prompt_tokens


def test_a_next_turn_gets_the_same_reply_whether_its_history_was_cached_or_not(
    api: httpx.Client, stack
) -> None:
    """The history of a conversation's next turn comes from the worker's cache (its earlier reply's
    tokens as they were decoded, one a step) or, once other chats took every slot, is prefilled
    again: the greedy reply must not depend on which."""
    metrics_url = f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics"
    card = "You are Mira, a lighthouse keeper who counts ships and tells old sea stories. " * 6
    history = [{"role": "system", "content": card}, {"role": "user", "content": "What did you see tonight?"}]

    def reply(messages: list[dict]) -> tuple[str, float]:
        """(the greedy reply, prompt tokens the worker found in its cache for it)"""
        before = value(samples(httpx.get(metrics_url).text), REUSED, model="lumimaid")
        body = completion_body("", 32) | {"stream": False, "messages": messages}
        text = api.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        return text, value(samples(httpx.get(metrics_url).text), REUSED, model="lumimaid") - before

    wait_engine_idle(stack)
    first, _ = reply(history)
    next_turn = [*history, {"role": "assistant", "content": first}, {"role": "user", "content": "And then?"}]
    cached, reused = reply(next_turn)
    for _ in range(3):  # until eight other chats at once have taken every slot, its own too
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            list(pool.map(lambda q: stream_tokens(api, completion_body(q, 24)), QUESTIONS))
        cold, reused_cold = reply(next_turn)
        if reused_cold == 0:
            break

    assert reused > 0 and reused_cold == 0  # the two paths this test compares were both taken
    assert cached == cold
