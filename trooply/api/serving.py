"""How `trooply serve` runs the HTTP connections: uvicorn's h11 protocol, with the kernel's half of closing a
connection moved off the event loop.

A request refused before its body is read (no key, a field over its cap, an import while another holds the
tenant's slot) is answered with `Connection: close` (api/edges.py), and the sender may still be pushing megabytes.
Closing such a socket is the kernel discarding what arrived and resetting the sender: measured in `trooply serve`
under bench/abuse.py's publishable attack, 2.6 ms a close on average, up to 52 ms, and py-spy put 62 % of the
event loop's samples there. Here the loop's close only drops a descriptor (the socket lives on in a duplicate);
the last close, the expensive one, runs on a thread of its own.
"""

import asyncio
import logging
import os
import queue
import threading

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
_to_close: queue.SimpleQueue[int] = queue.SimpleQueue()


def _close_forever() -> None:
    while True:  # a daemon thread: it ends with the process
        descriptor = _to_close.get()
        try:
            os.close(descriptor)
        except OSError:
            log.debug("could not close a socket's duplicate", exc_info=True)


threading.Thread(target=_close_forever, name="socket-close", daemon=True).start()


class OffLoopCloseH11(H11Protocol):
    def connection_lost(self, exc: Exception | None) -> None:
        duplicate = _duplicate(self.transport)
        super().connection_lost(exc)
        if duplicate is not None:
            # After the transport closes its own descriptor (right after this method returns), never before:
            # else the loop's close would be the last, expensive one.
            asyncio.get_running_loop().call_soon(_to_close.put, duplicate)


def _duplicate(transport: asyncio.BaseTransport) -> int | None:
    sock = transport.get_extra_info("socket")
    try:
        return os.dup(sock.fileno()) if sock is not None and sock.fileno() >= 0 else None
    except OSError:  # out of descriptors: the loop closes it, as before
        log.debug("could not duplicate a closing socket", exc_info=True)
        return None
