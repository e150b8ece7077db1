"""API keys and roles.

Keys come from the keys file (``keys.json`` in the data directory, holding only salted hashes)
and from ``SEGMENTATION_API_KEYS`` (``key:user:role`` entries). A key is looked up by its hash,
so the secret itself is never kept in memory longer than one request, nor written anywhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("analyst", "auditor", "admin")
#: What each role may do, by the role it at least needs.
_RANK = {"analyst": 0, "auditor": 1, "admin": 2}


@dataclass(frozen=True)
class Identity:
    """Who is calling: the user id recorded on events, the role, and any data restriction
    (``{column: [values]}``: the key sees only the rows whose values are among those)."""

    user: str
    role: str
    restrictions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def may(self, needed: str) -> bool:
        """Whether this role includes ``needed`` (admin > auditor > analyst)."""
        return _RANK[self.role] >= _RANK[needed]

    @property
    def restriction(self) -> dict[str, list[str]]:
        """The data restriction as filters (empty: sees everything)."""
        return {column: list(values) for column, values in self.restrictions}


class KeyStore:
    """The known keys, by salted hash."""

    def __init__(self, keys_file: Path, env_keys: str = "") -> None:
        self.keys_file = keys_file
        self._keys_path = str(keys_file)
        self._file_entries: list[dict[str, Any]] = []
        self._env: dict[str, Identity] = {}
        # Keys from the environment are held only as hashes salted per process.
        self._env_salt = secrets.token_hex(8)
        for entry in filter(None, (e.strip() for e in env_keys.split(","))):
            key, user, role = _parse_env_entry(entry)
            self._env[_digest(key, self._env_salt)] = Identity(user, role)
        self.reload()

    def reload(self) -> None:
        """Re-read the keys file (a key added by the CLI is seen without a restart)."""
        if self.keys_file.exists():
            self._file_entries = json.loads(self.keys_file.read_text())["keys"]
            self._mtime = self.keys_file.stat().st_mtime_ns
        else:
            self._file_entries = []
            self._mtime = 0

    def __len__(self) -> int:
        return len(self._file_entries) + len(self._env)

    def identify(self, key: str) -> Identity | None:
        """The identity a key stands for, or None."""
        try:
            mtime = os.stat(self._keys_path).st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime != self._mtime:
            self.reload()
        found = self._env.get(_digest(key, self._env_salt))
        if found is not None:
            return found
        key_id, _, _ = key.partition(".")
        for entry in self._file_entries:
            if entry["id"] == key_id and hmac.compare_digest(entry["hash"], _digest(key, entry["salt"])):
                restrictions = entry.get("restrictions") or {}
                return Identity(
                    entry["user"],
                    entry["role"],
                    tuple((c, tuple(v)) for c, v in sorted(restrictions.items())),
                )
        return None

    def add(self, user: str, role: str, restrictions: dict[str, list[str]] | None = None) -> str:
        """Create a key for ``user`` with ``role`` (and a data restriction, for a reader), store
        its hash, and return the key (once)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not user or any(c in user for c in ":,\n"):
            raise ValueError("a user id is non-empty text without ':', ',' or line breaks")
        key_id = secrets.token_hex(6)
        key = f"{key_id}.{secrets.token_urlsafe(24)}"
        salt = secrets.token_hex(8)
        if restrictions and role == "admin":
            raise ValueError("a restricted key may not run commands: give it the analyst or auditor role")
        if restrictions is not None and any(not values for values in restrictions.values()):
            raise ValueError("each restricted column needs at least one value")
        entry: dict[str, Any] = {
            "id": key_id,
            "user": user,
            "role": role,
            "salt": salt,
            "hash": _digest(key, salt),
        }
        if restrictions:
            entry["restrictions"] = {c: list(v) for c, v in restrictions.items()}
        self._update(lambda entries: [*entries, entry])
        return key

    def listing(self) -> list[dict[str, Any]]:
        """The stored keys without their secrets: id, user, role."""
        self.reload()
        return [
            {"id": e["id"], "user": e["user"], "role": e["role"], "restrictions": e.get("restrictions") or {}}
            for e in self._file_entries
        ]

    def revoke(self, key_id: str) -> bool:
        """Remove a stored key by its id (the part before the dot); False if there is none."""
        found = False

        def without(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            nonlocal found
            kept = [e for e in entries if e["id"] != key_id]
            found = len(kept) != len(entries)
            return kept

        self._update(without)
        return found

    def _update(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """Read, change and rewrite the keys file under an exclusive lock, so two writers
        (two ``segmentation keys`` commands) cannot lose each other's keys."""
        self.keys_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.keys_file.with_name(self.keys_file.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = json.loads(self.keys_file.read_text())["keys"] if self.keys_file.exists() else []
            temp = self.keys_file.with_name(f".{self.keys_file.name}.{secrets.token_hex(4)}.tmp")
            temp.write_text(json.dumps({"keys": change(entries)}, indent=2))
            os.chmod(temp, 0o600)
            temp.replace(self.keys_file)
        self.reload()


def _digest(key: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def _parse_env_entry(entry: str) -> tuple[str, str, str]:
    key, sep1, rest = entry.partition(":")
    user, sep2, role = rest.partition(":")
    if not (sep1 and sep2 and key and user) or role not in ROLES:
        raise ValueError(
            "SEGMENTATION_API_KEYS entries are key:user:role with role one of " + ", ".join(ROLES)
        )
    return key, user, role
