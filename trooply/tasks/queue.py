"""One task queue, two shapes: an in-process pool (embedded) and Celery on Redis (single host, scale-out).

A task is a name and a function of JSON-able arguments, registered once (trooply/container.py). Senders
only name it, so the API process of the Celery shape holds no task code and loads no model; a Celery
worker runs the same registered function (workers/tasks.py routes each task name to it).

Background tasks (a duplicate scan, a tenant purge, a model migration's re-encodes: minutes each, sometimes
thousands queued at once) are declared where their name is (`background_task`) and never queue in front of
ingest batches or of another kind of background task: embedded, each kind has its own thread; with Celery,
each kind has its own queue (`trooply.background.<kind>`), which `trooply worker --queues background`
consumes in turn with the others (kombu's round robin), so a scan waits for one re-encode, not for all.
In both shapes, tenants take turns within a queue (`_Lane` embedded, trooply/tasks/fair_share.py with Celery).
"""

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

Task = Callable[..., object]  # called with the arguments it was sent with; what it returns is not used
INGEST_QUEUE = "celery"  # Celery's default: messages queued before background queues existed still run
WORKER_CHOICES = ("all", "ingest", "background")  # `trooply worker --queues`
_background_queues: dict[str, str] = {}  # background task name: its Celery queue


def background_task(name: str) -> str:
    """Declares a task name long-running (at module level, beside the name's constant, so every process that
    sends it knows): a thread of its own embedded, a Celery queue of its own."""
    _background_queues[name] = "trooply.background." + name.removeprefix("trooply.")
    return name


def is_background(name: str) -> bool:
    return name in _background_queues


def queue_of(name: str) -> str:
    """The Celery queue a task is sent to."""
    return _background_queues.get(name, INGEST_QUEUE)


def worker_queues(choice: str) -> list[str]:
    """The Celery queues `trooply worker --queues CHOICE` consumes (its caller imports every task first)."""
    background = sorted(set(_background_queues.values()))
    return {"ingest": [INGEST_QUEUE], "background": background, "all": [INGEST_QUEUE, *background]}[choice]


class Dispatcher(Protocol):
    @property
    def runs_here(self) -> bool:
        """Whether tasks run in this process (embedded) or on workers elsewhere (Celery)."""
        ...

    def register(self, name: str, task: Task) -> None: ...

    def send(self, name: str, args: Sequence[Any], delay: float = 0.0) -> None: ...

    def run(self, name: str, args: Sequence[Any]) -> object:
        """Runs a registered task in this process, as a worker does."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ping(self) -> None: ...

    def depth(self) -> int: ...


class TaskRegistry:
    """Task names to their functions: the one table both queue shapes run from."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, name: str, task: Task) -> None:
        if name in self._tasks:
            raise ValueError(f"task {name!r} is registered twice")
        self._tasks[name] = task

    def run(self, name: str, args: Sequence[Any]) -> object:
        task = self._tasks.get(name)
        if task is None:
            raise LookupError(f"no task {name!r} is registered")
        return task(*args)


class _Lane:
    """Worker threads draining delay-aware queues, one per sharer (a task's first argument: the tenant, for every
    task of a tenant), served in turn: a tenant with a thousand tasks queued delays another's next task by one
    task, not by a thousand. Within one sharer, tasks run in due order, then sending order."""

    def __init__(self, name: str, workers: int, run: Callable[[str, list[Any]], object]) -> None:
        self.name, self.workers, self._run = name, workers, run
        self._queues: dict[str, list[tuple[float, int, str, list[Any]]]] = {}  # sharer: its heap
        self._turns: deque[str] = deque()  # sharers with tasks queued, the next to be served first
        self._order = itertools.count()  # equal due times keep their sending order
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._busy = 0
        self._queued = 0

    def start(self) -> None:
        self._stopping = False
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def signal_stop(self) -> None:
        """The workers stop after their current task (see `join`)."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()

    def join(self, deadline: float) -> None:
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def push(self, name: str, args: list[Any], delay: float) -> None:
        sharer = str(args[0]) if args else ""
        with self._ready:
            if sharer not in self._queues:
                self._queues[sharer] = []
                self._turns.append(sharer)
            heapq.heappush(self._queues[sharer], (time.monotonic() + delay, next(self._order), name, args))
            self._queued += 1
            self._ready.notify()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def depth(self) -> int:
        with self._ready:
            return self._queued + self._busy

    def _work(self) -> None:
        while (task := self._next_due()) is not None:
            name, args = task
            try:
                self._run(name, args)
            except Exception:  # a bug in one task must not kill the pool; SQL resumes its work on restart
                log.exception("task %s failed", name)
            finally:
                with self._ready:
                    self._busy -= 1

    def _next_due(self) -> tuple[str, list[Any]] | None:
        with self._ready:
            while not self._stopping:
                now = time.monotonic()
                for _ in range(len(self._turns)):
                    sharer = self._turns[0]
                    self._turns.rotate(-1)  # served or not due yet, it goes to the back of the line
                    queue = self._queues[sharer]
                    if queue[0][0] <= now:
                        _due, _order, name, args = heapq.heappop(queue)
                        if not queue:
                            del self._queues[sharer]
                            self._turns.remove(sharer)
                        self._queued -= 1
                        self._busy += 1
                        return name, args
                soonest = min((queue[0][0] for queue in self._queues.values()), default=None)
                self._ready.wait(None if soonest is None else soonest - now)
            return None


class InProcessQueue:
    """The embedded shape: `workers` threads for batches, and one thread per kind of background task (each
    kind runs one at a time, and a migration's thousand re-encodes never hold up a merchant's scan). SQL holds
    the truth, so what is still queued at exit is safely lost: each domain resumes its unfinished work at start."""

    runs_here = True

    def __init__(self, workers: int) -> None:
        self.tasks = TaskRegistry()
        self._batches = _Lane("tasks", workers, self.run)
        self._background: dict[str, _Lane] = {}
        self._lanes_lock = threading.Lock()  # guards the dict above and `_started`
        self._started = False

    def register(self, name: str, task: Task) -> None:
        self.tasks.register(name, task)

    def send(self, name: str, args: Sequence[Any], delay: float = 0.0) -> None:
        # Like Celery's, sending never checks the name: a task sent before start waits for the pool.
        self._lane(name).push(name, list(args), delay)

    def run(self, name: str, args: Sequence[Any]) -> object:
        return self.tasks.run(name, args)

    def start(self) -> None:
        with self._lanes_lock:
            self._started = True
            for lane in (self._batches, *self._background.values()):
                lane.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Every lane finishes its current task, together, within `timeout`."""
        with self._lanes_lock:
            self._started = False
            lanes = [self._batches, *self._background.values()]
        for lane in lanes:
            lane.signal_stop()
        deadline = time.monotonic() + timeout
        for lane in lanes:
            lane.join(deadline)

    def ping(self) -> None:
        with self._lanes_lock:
            lanes = [self._batches, *self._background.values()]
        if not all(lane.running for lane in lanes):
            raise RuntimeError("the in-process task pool is not running")

    def depth(self) -> int:
        """Ingest batches waiting or running (background tasks not counted, as with Celery)."""
        return self._batches.depth()

    def _lane(self, name: str) -> _Lane:
        if not is_background(name):
            return self._batches
        with self._lanes_lock:
            lane = self._background.get(name)
            if lane is None:
                lane = self._background[name] = _Lane(name.rsplit(".", 1)[-1], 1, self.run)
                if self._started:
                    lane.start()
            return lane


TURN_TASK = "trooply.fair_share.turn"  # a turn token: runs the next task of the sharer whose turn it is
ENTER_TASK = "trooply.fair_share.enter"  # a delayed send: joins its sharer's line when due


class CeleryDispatcher:
    """The Celery shape: sends tasks by name to the workers (`trooply worker`), which run them. As embedded,
    tenants take turns (trooply/tasks/fair_share.py): a task waits in its tenant's line in Redis and the
    Celery queue carries one turn token per task."""

    runs_here = False

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        from trooply.tasks.fair_share import FairLines

        self.tasks = TaskRegistry()
        self.app = Celery("trooply-client", broker=broker_url)
        self.lines = FairLines(broker_url)

    def register(self, name: str, task: Task) -> None:
        self.tasks.register(name, task)  # run by a worker's `run`

    def send(self, name: str, args: Sequence[Any], delay: float = 0.0) -> None:
        if not args:  # no sharer (beat's periodic tasks, run by name on a worker): nothing to share
            self.app.send_task(name, countdown=delay or None, queue=queue_of(name))
        elif delay > 0:  # a retry: it joins its line when due, as the embedded lane's due time does
            self.app.send_task(ENTER_TASK, args=[name, list(args)], countdown=delay, queue=queue_of(name))
        else:
            self.enter(name, args)

    def enter(self, name: str, args: Sequence[Any]) -> None:
        """Puts a task at the back of its sharer's line and one turn token on its Celery queue."""
        queue = queue_of(name)
        self.lines.push(queue, name, args)
        self.app.send_task(TURN_TASK, args=[queue], queue=queue)

    def take_turn(self, queue: str, token: str) -> None:
        """A worker's turn token (`token`: its Celery task id): runs the next task of the sharer whose turn it is;
        delivered again after a crash, it runs the task it had claimed."""
        task = self.lines.claim(queue, token)
        if task is None:
            return
        try:
            self.run(*task)
        finally:
            self.lines.release(token)

    def run(self, name: str, args: Sequence[Any]) -> object:
        return self.tasks.run(name, args)

    def start(self) -> None:
        """Nothing to start here: the workers consume, this process only sends."""

    def stop(self) -> None:
        self.app.close()  # the broker connection pool
        self.lines.close()

    def ping(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def depth(self) -> int:
        """Ingest messages waiting (delayed retries wait elsewhere, background tasks in their own queue: neither
        is counted)."""
        with self.app.connection_for_read() as connection:
            return connection.default_channel.queue_declare(INGEST_QUEUE, passive=True).message_count
