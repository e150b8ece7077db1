"""The query side of the segmentation read model: async reads from Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.aggregates.errors import NotFound
from service.projections.keys import Keys


class ReadModelUnavailable(Exception):
    """The read model cannot answer now (Redis down, being built, behind); retry shortly."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


_BUILDING = "the read model is being built from the event store; retry shortly"
_REBUILDING = "the read model is being rebuilt from the event store after Redis lost it; retry shortly"

#: GET the current generation and its position, then documents of one database in it, atomically;
#: just the generation while it is being rebuilt after a loss.
_MANY = """
local generation = redis.call('GET', KEYS[1])
if not generation then return nil end
if redis.call('GET', KEYS[2]) == generation then return {generation} end
local root = ARGV[1] .. ':' .. generation .. ':db:' .. ARGV[2] .. ':'
local out = {generation, redis.call('GET', ARGV[1] .. ':' .. generation .. ':position') or '0'}
for i = 3, #ARGV do
  out[#out + 1] = redis.call('GET', root .. ARGV[i])
end
return out
"""


#: How long a process reuses a default summary it read from Redis (see ``ReadModel.summary``).
SUMMARY_CACHE_SECONDS = 0.25


class ReadModel:
    """Reads the documents the projector wrote; every method is one or two Redis round trips."""

    def __init__(self, client: aioredis.Redis, control: Keys) -> None:
        self.redis = client
        self.control = control
        self._generation: tuple[float, Keys] | None = None
        self._many_script = client.register_script(_MANY)
        self._summaries: dict[str, tuple[float, int, bytes]] = {}

    async def keys(self) -> Keys:
        """The keys of the generation being served. Cached for a second: a rebuild's switch is
        seen within a second, and the old generation outlives that by its grace period."""
        now = time.monotonic()
        if self._generation is not None and now - self._generation[0] < 1.0:
            return self._generation[1]
        generation, rebuilding = await self._call("mget", [self.control.current, self.control.rebuilding])
        if generation is None:
            raise ReadModelUnavailable(_BUILDING, retry_after=2)
        if rebuilding == generation:  # not cached: the rebuild may end any moment
            raise ReadModelUnavailable(_REBUILDING, retry_after=2)
        keys = self.control.at(generation.decode() if isinstance(generation, bytes) else generation)
        self._generation = (now, keys)
        return keys

    async def _call(self, command: str, *args: Any) -> Any:
        try:
            if command == "evalsha_many":
                database, parts = args
                return await self._many_script(
                    keys=[self.control.current, self.control.rebuilding],
                    args=[self.control.control, database, *parts],
                )
            return await getattr(self.redis, command)(*args)
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"Redis is unavailable: {exc}", retry_after=5) from exc

    async def position(self) -> int:
        """The last event store position applied to the read model."""
        return int(await self._call("get", (await self.keys()).position) or 0)

    async def wait_for(self, position: int | None, timeout: float = 5.0) -> None:
        """Return once the read model has applied ``position``; 503 after ``timeout`` seconds."""
        if position is None:
            return
        deadline = time.monotonic() + timeout
        while await self._position_or_zero() < position:
            if time.monotonic() >= deadline:
                raise ReadModelUnavailable(
                    f"the read model has not yet reached position {position}; retry shortly", retry_after=1
                )
            await asyncio.sleep(0.02)

    async def _position_or_zero(self) -> int:
        try:
            return await self.position()
        except ReadModelUnavailable:
            return 0  # being built: keep waiting until the deadline

    async def raw(self, database: str, part: str) -> bytes | None:
        """One stored document of a database, as JSON bytes."""
        return await self._call("get", (await self.keys()).db(database, part))  # type: ignore[no-any-return]

    async def many(self, database: str, *parts: str) -> tuple[Keys, int, list[bytes | None]]:
        """Several documents of a database, read in one round trip together with the generation
        they belong to (a Lua script: atomic with a projector's transaction and with a switch of
        generation). The generation read also refreshes the reader's cached one."""
        result = await self._call("evalsha_many", database, parts)
        if result is None:
            raise ReadModelUnavailable(_BUILDING, retry_after=2)
        if len(result) == 1:
            raise ReadModelUnavailable(_REBUILDING, retry_after=2)
        generation, position, *values = result
        keys = self.control.at(generation.decode() if isinstance(generation, bytes) else generation)
        self._generation = (time.monotonic(), keys)
        return keys, int(position), values

    async def summary(self, database: str, min_position: int | None) -> bytes | None:
        """The default summary of a database (None if it has none, or failed).

        Analysts open this page all day, so each process keeps what it read for
        ``SUMMARY_CACHE_SECONDS``: a Redis round trip costs more than the rest of the request. A
        cached copy is used only if it was read at or after ``min_position``, so a client that
        passes the position of its command still reads its own write.
        """
        now = time.monotonic()
        cached = self._summaries.get(database)
        if (
            cached is not None
            and now - cached[0] < SUMMARY_CACHE_SECONDS
            and (min_position is None or cached[1] >= min_position)
        ):
            return cached[2]
        _, position, (summary, error) = await self.many(database, "summary", "error")
        if summary is None or error is not None:
            return None
        self._summaries[database] = (now, position, summary)
        return summary

    async def exists(self, key: str) -> bool:
        """Whether a key is there."""
        return bool(await self._call("exists", key))

    async def document(self, database: str, part: str) -> Any:
        """One stored document, decoded (``None`` when absent)."""
        raw = await self.raw(database, part)
        return None if raw is None else msgspec.json.decode(raw)

    async def require_data(self, database: str) -> dict[str, Any]:
        """The database's data document; 404 for an unknown database."""
        data = await self.document(database, "data")
        if data is None:
            if await self.rebuilding():  # not yet projected again, rather than unknown
                raise ReadModelUnavailable(_REBUILDING, retry_after=2)
            raise NotFound(f"database {database!r} does not exist")
        return data  # type: ignore[no-any-return]

    async def require_config(self, database: str) -> dict[str, Any]:
        """The configuration document; 404 when the database is unknown or unconfigured."""
        config = await self.document(database, "config")
        if config is None:
            await self.require_data(database)
            raise NotFound(f"database {database!r} is not configured")
        return config  # type: ignore[no-any-return]

    async def database_names(self) -> list[str]:
        """Every database the read model knows, sorted."""
        names = await self._call("smembers", (await self.keys()).databases)
        return sorted(n.decode() if isinstance(n, bytes) else n for n in names)

    async def customer(self, database: str, code: str) -> tuple[bytes | None, list[str]]:
        """A customer's row in the default view, and the active rules that remove it."""
        keys = await self.keys()
        row = await self._call("hget", keys.db(database, "customer"), code)
        removed = await self._call("hget", keys.db(database, "removed"), code)
        return row, ([] if removed is None else msgspec.json.decode(removed))

    async def audit(self, database: str) -> list[dict[str, Any]]:
        """The database's audit trail, oldest first."""
        entries = await self._call("lrange", (await self.keys()).db(database, "audit"), 0, -1)
        return [msgspec.json.decode(e) for e in entries]

    async def stream_rows(self, key: str, chunk: int = 1 << 20) -> AsyncIterator[dict[str, Any]]:
        """The rows of a stored row array (``encode_rows``), read a chunk at a time."""
        offset = 0
        pending = b""
        while True:
            piece = await self._call("getrange", key, offset, offset + chunk - 1)
            if not piece:
                break
            offset += len(piece)
            lines = (pending + piece).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield msgspec.json.decode(line.lstrip(b"[").rstrip(b",]"))
        row = pending.lstrip(b"[").rstrip(b",]")
        if row:
            yield msgspec.json.decode(row)

    async def global_audit(self) -> list[dict[str, Any]]:
        """Every database's audit trail in one, oldest first."""
        entries = await self._call("lrange", (await self.keys()).audit, 0, -1)
        return [msgspec.json.decode(e) for e in entries]

    async def cached(self, key: str) -> bytes | None:
        """A computed view cached earlier, or None."""
        return await self._call("get", key)  # type: ignore[no-any-return]

    async def cache(self, key: str, value: bytes, ttl: int) -> None:
        """Cache a computed view; its key names the versions it was computed from."""
        # A cache that cannot be written only costs a recomputation.
        with contextlib.suppress(RedisError, OSError):
            await self.redis.set(key, value, ex=ttl)

    async def rebuilding(self) -> bool:
        """Whether the read model is being rebuilt after Redis lost it."""
        try:
            return bool(await self.redis.exists(self.control.rebuilding))
        except (RedisError, OSError):
            return False

    async def stats(self) -> dict[str, float]:
        """The projectors' counters."""
        raw = await self._call("hgetall", self.control.stats)
        return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}

    async def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def projector_alive(self) -> bool:
        """Whether a projector has reported in the last few seconds."""
        try:
            return bool(await self.redis.exists(self.control.heartbeat))
        except (RedisError, OSError):
            return False
