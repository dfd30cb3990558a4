"""A queue as the sender sees it in the Celery shape: tasks run on workers elsewhere, so this process never
sees one end; every send is recorded."""


class WorkerQueue:
    runs_here = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    def send(self, name: str, args, delay: float = 0.0) -> None:
        self.sent.append((name, list(args)))
