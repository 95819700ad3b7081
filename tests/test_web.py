"""The web page at `/`, driven in Debian's Chromium against the real stack: card import by drag and
drop, a streamed chat with Stop, Regenerate and Continue, a reload in the middle of a reply, inert
markup, offline docs, and errors people can read."""

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from bson import ObjectId
from playwright.sync_api import Browser, expect

from embedded.stack import EmbeddedStack
from tests.support.browser import DEADLINE_MS, PHONE, Tab, letters, open_tab
from tests.support.cards import SERAPHINA_V2, card_png, named, sillytavern_png
from tests.support.sse import post_stream

LONG_STORY = "Tell me a very long story about the forest, the river and the old mill, with every detail."


@pytest.fixture
def tab(browser: Browser, stack: EmbeddedStack, api_key: str) -> Iterator[Tab]:
    tab = open_tab(browser, stack.api_url, api_key)
    yield tab
    assert tab.dialogs == [], "the page opened a dialog (markup ran)"
    assert tab.foreign_requests() == [], "the page reached another origin"
    tab.page.context.close()


def new_character(api: httpx.Client, **fields) -> dict:
    card = {"name": f"Web {uuid.uuid4().hex[:8]}", "first_mes": '*She waves.* "Hello there!"', **fields}
    response = api.post("/characters", json=card)
    assert response.status_code == 201, response.text
    return response.json()


def set_max_tokens(tab: Tab, count: int) -> None:
    """Through the page's own settings, as a person would."""
    page = tab.page
    page.get_by_text("Account", exact=True).click()
    page.locator("#max-tokens").fill(str(count))
    page.locator("#account-form button[type=submit]").click()


def open_new_chat(tab: Tab, character: dict) -> str:
    """Opens the character's chat, starts a conversation at its first greeting; returns its id."""
    page = tab.page
    page.goto(f"/#/chat/{character['id']}")
    page.get_by_role("button", name="New chat").click()
    page.wait_for_url(re.compile(rf"#/chat/{character['id']}/[0-9a-f]{{24}}$"))
    expect(page.locator("#chat-log .msg.assistant")).to_have_count(1)
    return page.url.rsplit("/", 1)[1]


def say(tab: Tab, text: str) -> None:
    tab.page.locator("#chat-input").fill(text)
    tab.page.locator("#chat-input").press("Enter")


def watch_reply_updates(tab: Tab) -> None:
    """Records the streaming reply's visible text each time it changes, until it is done."""
    tab.page.evaluate(
        """() => {
            window.__updates = [];
            new MutationObserver(() => {
                const body = document.querySelector("#chat-log .msg.streaming .msg-body");
                if (body && body.textContent && body.textContent !== window.__updates.at(-1)) {
                    window.__updates.push(body.textContent);
                }
            }).observe(document.querySelector("#chat-log"), { childList: true, subtree: true, characterData: true });
        }"""
    )


def streaming_job_id(tab: Tab) -> str:
    bubble = tab.page.locator("#chat-log .msg.streaming")
    expect(bubble).to_have_count(1)
    return bubble.get_attribute("data-job-id")


def wait_reply_done(tab: Tab, timeout_ms: int = DEADLINE_MS) -> None:
    """Until the reply has ended and the page shows it as stored (the log is busy from the click on)."""
    expect(tab.page.locator("#chat-log")).to_have_attribute("aria-busy", "false", timeout=timeout_ms)
    expect(tab.page.locator("#chat-log .msg.streaming")).to_have_count(0)


def last_reply_text(tab: Tab) -> str:
    return tab.page.locator("#chat-log .msg.assistant .msg-body").last.inner_text()


def stored_replies(db, conversation_id: str) -> list[dict]:
    found = db.messages.find({"conversation_id": ObjectId(conversation_id), "role": "assistant"})
    return sorted(found, key=lambda message: message["created_at"])


def test_the_page_and_the_docs_load_nothing_from_another_origin(tab: Tab) -> None:
    page = tab.page
    page.goto("/")
    expect(page.get_by_role("heading", name="ChatBot AI")).to_be_visible()
    expect(page.locator("#drop-zone")).to_be_visible()
    page.goto("/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    tab.screenshot("docs")
    page.goto("/redoc")
    expect(page.get_by_role("heading", name="Stream a character's reply")).to_be_visible()
    page.wait_for_load_state("networkidle")
    urls = [request.url for request in tab.requests]
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in urls)
    assert any(url.endswith("/docs-assets/redoc.standalone.js") for url in urls)


def test_a_dropped_png_card_joins_the_gallery_with_its_avatar(tab: Tab) -> None:
    name = f"Dropped {uuid.uuid4().hex[:8]}"
    page = tab.page
    page.goto("/")
    tab.drop_file("#drop-zone", "card.png", sillytavern_png(named(SERAPHINA_V2, name)), "image/png")
    expect(page.locator("#import-status")).to_have_text(f"Imported {name}.")
    card = page.locator("#gallery .card", has_text=name)
    expect(card).to_be_visible()
    picture = card.locator("img.avatar")
    expect(picture).to_be_visible()
    page.wait_for_function(
        "(image) => image.complete && image.naturalWidth > 0", arg=picture.element_handle()
    )
    page.locator("#char-search").fill(name[-8:])
    expect(page.locator("#gallery .card")).to_have_count(1)
    tab.screenshot("gallery")


def test_a_refused_import_shows_the_servers_reason(tab: Tab, api: httpx.Client) -> None:
    no_card = card_png({})
    refusal = api.post("/characters/import", content=no_card, headers={"Content-Type": "image/png"})
    assert refusal.status_code == 422
    page = tab.page
    page.goto("/")
    tab.drop_file("#drop-zone", "picture.png", no_card, "image/png")
    expect(page.locator("#import-status")).to_contain_text(refusal.json()["error"]["message"])


def test_a_chat_streams_stops_regenerates_and_continues(tab: Tab, api: httpx.Client, db) -> None:
    page = tab.page
    page.goto("/")
    set_max_tokens(tab, 400)
    conversation_id = open_new_chat(tab, new_character(api))
    watch_reply_updates(tab)
    say(tab, LONG_STORY)
    job_id = streaming_job_id(tab)
    page.wait_for_function("() => window.__updates.length >= 2")
    tab.screenshot("chat-streaming")
    page.get_by_role("button", name="Stop").click()
    wait_reply_done(tab)

    assert api.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
    (stopped,) = stored_replies(db, conversation_id)[1:]
    assert stopped["status"] == "cancelled" and stopped["content"]
    expect(page.locator("#chat-log .msg.assistant").last.locator(".badge")).to_have_text("stopped")
    assert letters(last_reply_text(tab)) == letters(stopped["content"])

    set_max_tokens(tab, 16)
    page.get_by_role("button", name="Regenerate", exact=True).click()
    expect(page.locator(".swipe-count")).to_have_text("2/2")
    second = last_reply_text(tab)
    badge = page.locator("#chat-log .msg.assistant").last.locator(".badge")
    expect(badge).to_have_count(0)
    page.get_by_role("button", name="Previous alternative").click()
    expect(page.locator(".swipe-count")).to_have_text("1/2")
    assert letters(last_reply_text(tab)) == letters(stopped["content"])
    expect(badge).to_have_text("stopped")  # the stopped alternative is still shown as stopped
    page.get_by_role("button", name="Next alternative").click()
    expect(page.locator(".swipe-count")).to_have_text("2/2")
    assert last_reply_text(tab) == second
    expect(badge).to_have_count(0)

    page.get_by_role("button", name="Continue").click()
    wait_reply_done(tab)
    (continued,) = stored_replies(db, conversation_id)[1:]
    assert letters(last_reply_text(tab)) == letters(continued["content"])
    assert letters(continued["content"]).startswith(letters(second))
    tab.screenshot("chat")


def test_the_alternative_shown_stays_chosen_after_a_reload(tab: Tab, api: httpx.Client) -> None:
    character = new_character(api)
    conversation = api.post("/conversations", json={"character_id": character["id"]}).json()
    path = f"/conversations/{conversation['id']}"
    post_stream(api, f"{path}/messages", {"input_data": "Hi", "max_tokens": 3, "temperature": 0})
    for max_tokens in (6, 9):
        post_stream(api, f"{path}/regenerate", {"max_tokens": max_tokens, "temperature": 0})
    alternatives = api.get(path).json()["messages"][-1]["swipes"]
    page = tab.page
    page.goto(f"/#/chat/{character['id']}/{conversation['id']}")
    expect(page.locator(".swipe-count")).to_have_text("3/3")

    for shown in ("2/3", "1/3"):
        page.get_by_role("button", name="Previous alternative").click()
        expect(page.locator(".swipe-count")).to_have_text(shown)
    page.reload()

    expect(page.locator(".swipe-count")).to_have_text("1/3")
    assert letters(last_reply_text(tab)) == letters(alternatives[0])
    # The conversation list tells conversations apart by their last message, not only their time.
    preview = page.locator(f"#conversation-list li[data-id='{conversation['id']}'] .preview")
    assert (
        letters(preview.inner_text()) == letters(alternatives[0])[: len(letters(preview.inner_text()))] != ""
    )
    assert api.get(path).json()["messages"][-1]["swipe_id"] == 0


def test_a_reload_in_the_middle_of_a_reply_finishes_it_without_repeating(
    tab: Tab, api: httpx.Client, db
) -> None:
    page = tab.page
    page.goto("/")
    set_max_tokens(tab, 160)  # long enough to outlast a reload on an idle machine
    conversation_id = open_new_chat(tab, new_character(api))
    say(tab, LONG_STORY)
    job_id = streaming_job_id(tab)
    page.wait_for_function("() => document.querySelector('#chat-log .msg.streaming .msg-body')?.textContent")
    page.reload()
    wait_reply_done(tab, timeout_ms=2 * DEADLINE_MS)
    (reply,) = stored_replies(db, conversation_id)[1:]
    assert reply["status"] == "complete"
    assert letters(last_reply_text(tab)) == letters(reply["content"])
    (resumed,) = [request for request in tab.requests if request.url.endswith(f"/jobs/{job_id}/events")]
    assert resumed.headers.get("last-event-id", "").isdigit(), "the page resumed from the start"
    assert page.evaluate("() => sessionStorage.getItem('chatbot.pendingReply')") is None


def test_markup_in_a_card_and_in_messages_stays_inert(tab: Tab, api: httpx.Client) -> None:
    character = new_character(
        api,
        description="<img src=x onerror=alert(1)>",
        first_mes="Hi <script>alert(2)</script> <img src=x onerror=alert(3)>",
        tags=["<b>bold</b>"],
    )
    page = tab.page
    page.goto("/")
    set_max_tokens(tab, 4)
    page.goto(f"/#/edit/{character['id']}")
    expect(page.locator("#editor textarea[name=description]")).to_have_value("<img src=x onerror=alert(1)>")
    open_new_chat(tab, character)
    greeting = page.locator("#chat-log .msg.assistant .msg-body").first
    expect(greeting).to_contain_text("<script>alert(2)</script>")
    say(tab, "Look: <script>alert(4)</script><img src=x onerror=alert(5)>")
    wait_reply_done(tab)
    expect(page.locator("#chat-log .msg.user .msg-body")).to_contain_text("<script>alert(4)</script>")
    assert page.locator("#chat-log script, #chat-log img[src=x], #gallery b").count() == 0
    page.goto("/#/characters")
    expect(page.locator("#gallery .tag", has_text="<b>bold</b>")).to_be_visible()


def test_the_missing_key_banner_goes_once_a_key_is_saved(
    browser: Browser, stack: EmbeddedStack, api_key: str
) -> None:
    tab = open_tab(browser, stack.api_url, "")
    page = tab.page
    page.goto("/")
    expect(page.locator("#banner")).to_contain_text('under "Account"')
    expect(page.locator("details.account")).to_have_attribute("open", "")

    page.locator("#api-key").fill(api_key)
    page.locator("#account-form button[type=submit]").click()

    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#account-state")).to_contain_text("Signed in")
    tab.page.context.close()


def test_the_batch_list_shows_the_callers_batches_from_the_server(tab: Tab, api: httpx.Client) -> None:
    item = {
        "character": {"name": "Rachel"},
        "messages": [{"role": "user", "content": "Hi"}],
        "params": {"max_tokens": 1},
    }
    batch = api.post("/batches", json={"items": [item]}).json()  # not through this page: another browser
    page = tab.page
    page.goto("/#/batches")

    row = page.locator(f"#batch-list .batch[data-id='{batch['id']}']")
    expect(row).to_have_attribute("data-state", "completed")
    page.reload()
    expect(row).to_contain_text("1/1 done")


def test_a_field_refused_by_the_server_is_named(tab: Tab, api: httpx.Client) -> None:
    page = tab.page
    page.goto("/")
    open_new_chat(tab, new_character(api))
    say(tab, "x" * 501)
    expect(page.locator("#banner")).to_contain_text('"input_data"')
    expect(page.locator("#chat-input")).to_have_value("x" * 501)


def test_the_chat_fits_a_phone(
    browser: Browser, stack: EmbeddedStack, api: httpx.Client, api_key: str
) -> None:
    tab = open_tab(browser, stack.api_url, api_key, PHONE)
    open_new_chat(tab, new_character(api))
    width = tab.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], "the page scrolls sideways at phone width"
    tab.screenshot("chat-phone")
    tab.page.context.close()
