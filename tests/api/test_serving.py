"""`trooply serve`'s connections: closing one whose refused body is still arriving is left to a thread (the kernel
discards what arrived there), not done on the event loop; no descriptor is left behind."""

import os
import queue
import select
import stat
import threading

import httpx
import uvicorn

from tests.support.services import free_port, wait_for_port
from trooply.api import serving


async def refuse_unread(scope, receive, send) -> None:
    """Answers before reading the body, and closes: what the key check and the form caps do."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 413, "headers": [(b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b""})


def test_a_refused_upload_is_closed_for_good_on_a_thread_not_on_the_loop(monkeypatch) -> None:
    handed_over: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    monkeypatch.setattr(serving, "_to_close", handed_over)
    still_open: list[bool] = []

    def close_handed_over() -> None:  # the closing thread's work, checked: the loop has closed its own descriptor
        while (descriptor := handed_over.get()) is not None:
            still_open.append(stat.S_ISSOCK(os.fstat(descriptor).st_mode))  # so this one is the socket's last
            os.close(descriptor)

    closer = threading.Thread(target=close_handed_over, daemon=True)
    closer.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(refuse_unread, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, http=serving.OffLoopCloseH11))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port, 10)
        body = b"x" * (4 * 1024 * 1024)
        # Each answered, or reset, at once: the sender is never left hanging on a connection nobody reads.
        assert all(_post(port, body) in (413, "reset") for _ in range(3))
    finally:
        server.should_exit = True
        thread.join(10)
        handed_over.put(None)
        closer.join(10)
    assert len(still_open) >= 4 and all(still_open)  # the port probe's connection and the three uploads


def _post(port: int, body: bytes) -> int | str:
    try:
        return httpx.post(f"http://127.0.0.1:{port}/v1/search/text", content=body, timeout=20).status_code
    except httpx.HTTPError:  # the reset may beat the answer to the client
        return "reset"


def test_the_closing_thread_closes_what_it_is_handed() -> None:
    reader, writer = os.pipe()
    try:
        serving._to_close.put(writer)
        ready, _, _ = select.select([reader], [], [], 10)
        assert ready and os.read(reader, 1) == b""  # the writing end is gone: end of file
    finally:
        os.close(reader)
