"""Fair share between tenants on the Celery shape: a Celery queue is first in, first out, so one tenant's
100,000-product import would hold every other tenant's next batch behind a thousand of its own.

The usual way out (per-sharer lines served round robin, with the broker's queue holding only turn tokens):
- sending a task pushes it onto its sharer's line in Redis (`<prefix>:<queue>:line:<sharer>`; the sharer is the
  task's first argument, the tenant for every tenant task, as in the embedded `_Lane`) and puts one *turn* token
  on the task's Celery queue;
- a worker that takes a token takes the next task of the sharer whose turn it is (a ring of the sharers with
  tasks waiting), so one token runs one task and the sharers take turns, whatever order their tokens came in;
- the task taken is held under the token's id until it finishes: a worker lost mid-task has its token delivered
  again (late acks), and that token runs the same task again, so delivery stays at least once, as before.

Both scripts run atomically in Redis, so the ring holds a sharer exactly when its line is not empty.
"""

import json
from collections.abc import Sequence
from typing import Any

from redis import Redis

PREFIX = "trooply:fair"
CLAIM_TTL_SECONDS = 2 * 3600  # beyond the broker's visibility timeout (1 h), after which a lost token comes back

# KEYS: ring, line. ARGV: sharer, task. A line that was empty puts its sharer at the back of the ring.
_PUSH = """
if redis.call('RPUSH', KEYS[2], ARGV[2]) == 1 then redis.call('RPUSH', KEYS[1], ARGV[1]) end
"""

# KEYS: ring, claim. ARGV: the lines' key prefix, claim TTL. A token delivered again gets the task it claimed.
_CLAIM = """
local held = redis.call('GET', KEYS[2])
if held then return held end
local sharer = redis.call('LPOP', KEYS[1])
if not sharer then return false end
local line = ARGV[1] .. sharer
local task = redis.call('LPOP', line)
if redis.call('LLEN', line) > 0 then redis.call('RPUSH', KEYS[1], sharer) end
if not task then return false end
redis.call('SET', KEYS[2], task, 'EX', ARGV[2])
return task
"""


def sharer_of(args: Sequence[Any]) -> str:
    """Whose turn a task counts against: its first argument (the tenant, for every task of a tenant)."""
    return str(args[0]) if args else ""


class FairLines:
    """The per-sharer lines of every Celery queue, in Redis (the broker's own server)."""

    def __init__(self, redis_url: str, prefix: str = PREFIX) -> None:
        self.redis = Redis.from_url(redis_url)
        self.prefix = prefix
        self._push = self.redis.register_script(_PUSH)
        self._claim = self.redis.register_script(_CLAIM)

    def push(self, queue: str, name: str, args: Sequence[Any]) -> None:
        sharer = sharer_of(args)
        self._push(keys=[self._ring(queue), self._line(queue) + sharer],
                   args=[sharer, json.dumps([name, list(args)])])

    def claim(self, queue: str, token: str) -> tuple[str, list[Any]] | None:
        """The task this token runs: the next one of the sharer whose turn it is (None: nothing waits)."""
        held = self._claim(keys=[self._ring(queue), self._claim_key(token)],
                           args=[self._line(queue), CLAIM_TTL_SECONDS])
        if held is None:
            return None
        name, args = json.loads(held)
        return name, args

    def release(self, token: str) -> None:
        self.redis.delete(self._claim_key(token))

    def waiting(self, queue: str, sharer: str) -> int:
        """Tasks of one sharer still waiting for their turn on a queue."""
        return int(self.redis.llen(self._line(queue) + sharer))

    def close(self) -> None:
        self.redis.close()

    def _ring(self, queue: str) -> str:
        return f"{self.prefix}:{queue}:ring"

    def _line(self, queue: str) -> str:
        return f"{self.prefix}:{queue}:line:"

    def _claim_key(self, token: str) -> str:
        return f"{self.prefix}:claim:{token}"
