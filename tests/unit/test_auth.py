"""API keys and roles: the key store (a keys file of salted hashes plus keys from the environment)
and the role ordering."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from service.auth import ROLES, Identity, KeyStore

ENV_KEYS = "k1:alice:admin,k2:ann:analyst"


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keys.json"


@pytest.fixture
def store(keys_file: Path) -> KeyStore:
    return KeyStore(keys_file, ENV_KEYS)


def test_environment_keys_identify_their_user_and_role(store: KeyStore) -> None:
    assert store.identify("k1") == Identity("alice", "admin")
    assert store.identify("k2") == Identity("ann", "analyst")
    assert len(store) == 2


@pytest.mark.parametrize("key", ["", "k3", "K1", "k1 ", "k1:alice:admin", "alice", "k1.x"])
def test_unknown_keys_identify_no_one(store: KeyStore, key: str) -> None:
    assert store.identify(key) is None


def test_no_keys_file_and_no_environment_keys_is_an_empty_store(keys_file: Path) -> None:
    store = KeyStore(keys_file)

    assert len(store) == 0
    assert store.identify("k1") is None
    assert not keys_file.exists()


def test_blank_environment_entries_are_ignored(keys_file: Path) -> None:
    store = KeyStore(keys_file, " k1:alice:admin , ,k2:ann:analyst,")

    assert len(store) == 2
    assert store.identify("k1") == Identity("alice", "admin")


@pytest.mark.parametrize(
    "env_keys",
    [
        "k1",
        "k1:alice",
        "k1:alice:",
        "k1::admin",
        ":alice:admin",
        "k1:alice:root",
        "k1:alice:Admin",
        "k1:alice:admin:extra",
        "k1:alice:admin,k2:ann",
    ],
)
def test_malformed_environment_entries_are_refused(keys_file: Path, env_keys: str) -> None:
    with pytest.raises(ValueError):
        KeyStore(keys_file, env_keys)


@pytest.mark.parametrize("role", ROLES)
def test_an_added_key_identifies_its_user(store: KeyStore, keys_file: Path, role: str) -> None:
    key = store.add("bob", role)

    assert store.identify(key) == Identity("bob", role)
    assert len(store) == 3
    # A store started later (another process) reads it from the file.
    assert KeyStore(keys_file).identify(key) == Identity("bob", role)


def test_the_keys_file_holds_no_secret(store: KeyStore, keys_file: Path) -> None:
    key = store.add("bob", "auditor")

    text = keys_file.read_text()
    key_id, _, secret = key.partition(".")
    assert key not in text
    assert secret not in text
    assert "k1" not in text and "alice" not in text  # environment keys are never written
    [entry] = json.loads(text)["keys"]
    assert set(entry) == {"id", "user", "role", "salt", "hash"}
    assert (entry["id"], entry["user"], entry["role"]) == (key_id, "bob", "auditor")


def test_the_keys_file_is_private(store: KeyStore, keys_file: Path) -> None:
    store.add("bob", "analyst")

    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    # No temporary file left behind (the lock file stays, empty).
    assert sorted(p.name for p in keys_file.parent.iterdir()) == ["keys.json", "keys.json.lock"]


def test_keys_are_distinct_and_each_identifies_only_its_user(store: KeyStore) -> None:
    first = store.add("bob", "analyst")
    second = store.add("carol", "admin")

    assert first != second
    assert store.identify(first) == Identity("bob", "analyst")
    assert store.identify(second) == Identity("carol", "admin")
    # Right id, wrong secret.
    assert store.identify(first.partition(".")[0] + "." + second.partition(".")[2]) is None


def test_a_key_added_by_another_store_is_seen_without_a_restart(keys_file: Path) -> None:
    server = KeyStore(keys_file, ENV_KEYS)
    assert server.identify("anything") is None

    key = KeyStore(keys_file).add("bob", "auditor")

    assert server.identify(key) == Identity("bob", "auditor")


@pytest.mark.parametrize("role", ["root", "", "Admin"])
def test_add_refuses_an_unknown_role(store: KeyStore, keys_file: Path, role: str) -> None:
    with pytest.raises(ValueError):
        store.add("bob", role)
    assert not keys_file.exists()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("admin", {"admin", "auditor", "analyst"}),
        ("auditor", {"auditor", "analyst"}),
        ("analyst", {"analyst"}),
    ],
)
def test_identity_may_follows_admin_over_auditor_over_analyst(role: str, allowed: set[str]) -> None:
    identity = Identity("someone", role)

    assert {needed for needed in ROLES if identity.may(needed)} == allowed


def test_two_stores_adding_keys_keep_each_others_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first, second = KeyStore(path), KeyStore(path)

    key_b = second.add("bob", "admin")
    key_a = first.add("alice", "analyst")

    fresh = KeyStore(path)
    assert fresh.identify(key_a) == Identity("alice", "analyst")
    assert fresh.identify(key_b) == Identity("bob", "admin")


def test_list_shows_no_secret_and_revoke_refuses_the_key_next_time(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key = store.add("alice", "admin")
    key_id = key.split(".")[0]
    server = KeyStore(path)
    assert server.identify(key) is not None

    listed = store.listing()
    assert listed == [{"id": key_id, "user": "alice", "role": "admin", "restrictions": {}}]
    assert store.revoke(key_id) is True
    assert store.revoke(key_id) is False
    assert server.identify(key) is None


def test_a_key_may_carry_a_data_restriction_but_not_with_the_admin_role(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")

    key = store.add("rita", "analyst", {"Region": ["West"]})

    identity = store.identify(key)
    assert identity is not None and identity.restriction == {"Region": ["West"]}
    with pytest.raises(ValueError):
        store.add("root", "admin", {"Region": ["West"]})
    with pytest.raises(ValueError):
        store.add("nobody", "analyst", {"Region": []})
