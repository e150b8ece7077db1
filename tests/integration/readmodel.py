"""Comparing read models key by key."""

from __future__ import annotations

import msgspec
import redis

from service.application import SegmentationApplication
from service.projections.keys import Keys
from service.projections.segmentation import SegmentationProjector


def snapshot(client: redis.Redis, keys: Keys) -> dict[bytes, object]:
    """Every key of a generation with its value (hashes and lists in full), named without the
    generation, for comparing two read models."""
    found: dict[bytes, object] = {}
    root = keys.root.encode()
    for key in sorted(client.scan_iter(match=keys.pattern)):
        kind = client.type(key)
        name = key.replace(root, b"")
        if kind == b"string":
            value: object = client.get(key)
            if key.endswith(b":summary"):
                value = {k: v for k, v in msgspec.json.decode(value).items() if k != "computed_at"}  # type: ignore[arg-type]
            found[name] = value
        elif kind == b"hash":
            found[name] = client.hgetall(key)
        elif kind == b"list":
            found[name] = client.lrange(key, 0, -1)
        elif kind == b"set":
            found[name] = client.smembers(key)
    return found


def rebuilt_from_scratch(
    app: SegmentationApplication, client: redis.Redis, prefix: str
) -> dict[bytes, object]:
    """The read model a fresh projector builds from the whole event store, for comparison."""
    fresh = SegmentationProjector(app, client, Keys(prefix + "-fresh"))
    fresh.catch_up()
    return snapshot(client, fresh.keys)


def live(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    """The read model a deployment serves now (its current generation)."""
    generation = client.get(Keys(prefix).current)
    assert generation is not None, "no generation is being served"
    return snapshot(client, Keys(prefix, generation.decode()))
