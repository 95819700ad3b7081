"""The page in Korean and English, in Chromium: the browser's language picks it, `<html lang>` follows,
the switch keeps the choice; and no English string of the strings table (web/js/i18n.js) is left
anywhere in the Korean page, view after view (its text and its attributes: placeholders, labels,
titles), nor in what it writes of an API's refusal."""

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from embedded.stack import EmbeddedStack
from tests.support.browser import Tab, open_tab
from tests.support.sse import post_stream

# The page's own text and attributes, outside what people and the model wrote (.msg-body).
PAGE_TEXT = """() => {
    const parts = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (parent.closest(".msg-body") || !parent.checkVisibility()) continue;
        parts.push(node.textContent);
    }
    for (const element of document.querySelectorAll("[placeholder], [aria-label], [title], [alt]")) {
        if (element.closest(".msg-body")) continue;
        for (const name of ["placeholder", "aria-label", "title", "alt"]) {
            if (element.hasAttribute(name)) parts.push(element.getAttribute(name));
        }
    }
    return parts.join("\\n");
}"""


@pytest.fixture
def korean(browser: Browser, stack: EmbeddedStack, api_key: str) -> Iterator[Tab]:
    tab = open_tab(browser, stack.api_url, api_key, locale="ko-KR")
    yield tab
    assert tab.dialogs == [] and tab.foreign_requests() == []  # no font or anything else fetched
    tab.page.context.close()


def english_fragments(tab: Tab) -> list[str]:
    """Each English string of the table that Korean words differently, cut at its `{placeholders}`,
    kept where a piece has a word in it."""
    table = tab.page.evaluate("async () => (await import('/static/js/i18n.js')).STRINGS")
    assert set(table["en"]) == set(table["ko"]), "a string is missing in one language"
    fragments = set()
    for key, english in table["en"].items():
        if english == table["ko"][key]:
            continue
        for piece in re.split(r"\{\w+\}", english):
            if re.search(r"[A-Za-z]{2}", piece):
                fragments.add(piece.strip())
    return sorted(fragments)


def english_left(tab: Tab, fragments: list[str]) -> list[str]:
    text = tab.page.evaluate(PAGE_TEXT)
    return [piece for piece in fragments if re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", text)]


def korean_character(api: httpx.Client) -> dict:
    card = {
        "name": f"서연 {uuid.uuid4().hex[:6]}",
        "first_mes": "*손을 흔든다.* 안녕하세요!",
        "alternate_greetings": ["어서 오세요."],
        "tags": ["판타지"],
        "character_book": {
            "entries": [{"keys": ["숲"], "content": "오래된 숲.", "enabled": True, "insertion_order": 0}]
        },
    }
    response = api.post("/characters", json=card)
    assert response.status_code == 201, response.text
    return response.json()


def test_the_browsers_language_picks_korean_and_the_switch_keeps_a_choice(korean: Tab) -> None:
    page = korean.page
    page.goto("/")

    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("[data-nav=characters]")).to_have_text("캐릭터")
    expect(page.locator("#char-new")).to_have_text("새 캐릭터")
    expect(page.locator("#char-search")).to_have_attribute("placeholder", "이름으로 검색")

    page.locator("details.account summary").click()
    page.locator("#lang-select").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("[data-nav=characters]")).to_have_text("Characters")
    page.reload()  # the choice outlives the page
    expect(page.locator("#char-new")).to_have_text("New character")

    page.locator("details.account summary").click()
    page.locator("#lang-select").select_option("ko")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("#char-new")).to_have_text("새 캐릭터")


def test_no_english_string_of_the_table_is_left_in_any_korean_view(korean: Tab, api: httpx.Client) -> None:
    character = korean_character(api)
    conversation = api.post("/conversations", json={"character_id": character["id"]}).json()
    path = f"/conversations/{conversation['id']}"
    post_stream(api, f"{path}/messages", {"input_data": "안녕", "max_tokens": 2, "temperature": 0})
    batch = api.post(
        "/batches",
        json={
            "items": [
                {
                    "character": {"name": "서연", "description": "숲의 치유사"},
                    "messages": [{"role": "user", "content": "안녕"}],
                    "params": {"max_tokens": 1},
                }
            ]
        },
    )
    assert batch.status_code == 202, batch.text
    page = korean.page
    page.goto("/")
    fragments = english_fragments(korean)
    views = {
        "gallery": lambda: expect(page.locator("#gallery .card")).not_to_have_count(0),
        "account": lambda: page.locator("details.account summary").click(),
        "editor (new)": lambda: (
            page.goto("/#/new"),
            page.locator("#greeting-add").click(),
            page.locator("#lore-add").click(),
        ),
        "editor (edit)": lambda: (
            page.goto(f"/#/edit/{character['id']}"),
            expect(page.locator("#lore-list li")).to_have_count(1),
        ),
        "chat": lambda: (
            page.goto(f"/#/chat/{character['id']}/{conversation['id']}"),
            expect(page.locator(".swipe-count")).to_have_text("1/1"),
        ),
        "delete confirmation": lambda: page.locator("#conversation-list button").first.click(),
        "assistant": lambda: (page.keyboard.press("Escape"), page.goto("/#/assistant")),
        "batches": lambda: (
            page.goto("/#/batches"),
            expect(page.locator(f"#batch-list .batch[data-id='{batch.json()['id']}']")).to_have_count(1),
        ),
        "a refused import": lambda: (
            page.goto("/#/characters"),
            korean.drop_file("#drop-zone", "카드.json", b"{}", "application/json"),
            expect(page.locator("#import-status")).to_contain_text("가져오지 못했습니다"),
        ),
        "an API error": lambda: (
            page.goto(f"/#/edit/{'0' * 24}"),
            expect(page.locator("#banner")).to_contain_text("찾을 수 없습니다"),
        ),
    }

    for view, show in views.items():
        show()
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        assert english_left(korean, fragments) == [], f"English left in the Korean page's {view}"
