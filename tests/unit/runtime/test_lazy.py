import threading

from trooply.runtime.lazy import Lazy


class Part:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_lazy_part_opens_once_for_concurrent_first_callers():
    opened: list[Part] = []
    start = threading.Barrier(8)

    def open_part() -> Part:
        opened.append(Part())
        return opened[-1]

    lazy = Lazy(open_part)
    assert not lazy.opened
    seen: list[Part] = []

    def first_use() -> None:
        start.wait()
        seen.append(lazy())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 1 and all(part is opened[0] for part in seen) and lazy.opened


def test_closing_never_opens_and_a_closed_part_is_not_opened_again():
    opened: list[Part] = []
    never = Lazy(lambda: opened.append(Part()) or opened[-1])
    never.close(Part.close)
    assert opened == [] and not never.opened

    used = Lazy(Part)
    part = used()
    used.close(Part.close)
    assert part.closed and used() is part  # a late caller gets the closed part, not a second one
