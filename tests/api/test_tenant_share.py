"""An account's heavy requests are bounded per account: a second import while its first is still arriving is a 429,
and another account imports meanwhile. The first import is held open at the ASGI level (its body half sent)."""

import anyio
import httpx

from tests.conftest import auth, new_tenant

CSV = b"id,image_url\nsku-1,http://127.0.0.1:9/a.png\n"


def multipart(key: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    request = httpx.Request("POST", "http://testserver/v1/imports", files={"file": ("p.csv", CSV, "text/csv")},
                            headers=auth(key))
    return request.read(), [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]


def test_one_import_per_account_at_a_time(client):
    first, other = new_tenant(client), new_tenant(client, "other")
    body, headers = multipart(first.secret_key)
    arrived = client.portal.call(anyio.Event)
    replies: list[dict] = []
    sent = 0

    async def receive() -> dict:
        nonlocal sent
        sent += 1
        if sent == 1:
            return {"type": "http.request", "body": body[:len(body) // 2], "more_body": True}
        if sent == 2:
            await arrived.wait()
            return {"type": "http.request", "body": body[len(body) // 2:], "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        replies.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": "/v1/imports",
             "raw_path": b"/v1/imports", "root_path": "", "scheme": "http", "query_string": b"",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {}, "headers": headers}
    held = client.portal.start_task_soon(client.app, scope, receive, send)
    try:
        while sent < 2:  # the first import is reading its body
            client.portal.call(anyio.sleep, 0.01)
        second = client.post("/v1/imports", files={"file": ("p.csv", CSV, "text/csv")},
                             headers=auth(first.secret_key))
        assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_requests"
        assert second.headers["Retry-After"]
        elsewhere = client.post("/v1/imports", files={"file": ("p.csv", CSV, "text/csv")},
                                headers=auth(other.secret_key))
        assert elsewhere.status_code == 202, "another account is not held up"
    finally:
        client.portal.call(arrived.set)
        held.result(timeout=30)
    assert next(m for m in replies if m["type"] == "http.response.start")["status"] == 202
    again = client.post("/v1/imports", files={"file": ("p.csv", CSV, "text/csv")}, headers=auth(first.secret_key))
    assert again.status_code == 202, "the slot is free once the first import has answered"
