"""The original's request filters, on the real middleware; the API's access log."""


def test_bot_user_agents_are_refused_with_403(api) -> None:
    response = api.get("/health", headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_browsers_are_served(api) -> None:
    assert (
        api.get(
            "/health", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
        ).status_code
        == 200
    )
