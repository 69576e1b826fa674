"""The Store: what each account published, merged into one Exposition swapped whole."""

from __future__ import annotations

from exporter.exposition import Store
from exporter.exposition.gzipjoin import Chunk


def sample(name: str, account: str, value: int) -> dict[str, Chunk]:
    return {name: Chunk.of(f'{name}{{account="{account}"}} {value}\n'.encode())}


def up(account: str, value: int) -> dict[str, Chunk]:
    return sample("pinpointe_up", account, value)


def opens(account: str, value: int) -> dict[str, Chunk]:
    return sample("pinpointe_autoresponder_opens", account, value)


def lines(store: Store) -> list[str]:
    text = b"".join(store.exposition.parts(False)).decode()
    return [line for line in text.splitlines() if not line.startswith(("#", "pinpointe_exporter"))]


def test_accounts_are_served_in_configured_order_under_one_header_per_family() -> None:
    store = Store(["zeta", "alpha"])
    store.update("alpha", up("alpha", 1), opens("alpha", 5))
    store.update("zeta", up("zeta", 0), opens("zeta", 7))
    assert lines(store) == [
        'pinpointe_autoresponder_opens{account="zeta"} 7',
        'pinpointe_autoresponder_opens{account="alpha"} 5',
        'pinpointe_up{account="zeta"} 0',
        'pinpointe_up{account="alpha"} 1',
    ]


def test_health_alone_keeps_the_engagement_and_an_empty_engagement_withdraws_it() -> None:
    store = Store(["acme"])
    store.update("acme", up("acme", 1), opens("acme", 5))
    store.update("acme", up("acme", 0))  # a failed poll: previous data kept
    assert lines(store) == [
        'pinpointe_autoresponder_opens{account="acme"} 5',
        'pinpointe_up{account="acme"} 0',
    ]
    store.update("acme", up("acme", 0), {})  # stale: withdrawn
    assert lines(store) == ['pinpointe_up{account="acme"} 0']


def test_an_exposition_taken_by_a_reader_never_changes() -> None:
    store = Store(["acme"])
    store.update("acme", up("acme", 1), opens("acme", 5))
    taken, generation = store.exposition, store.generation
    store.update("acme", up("acme", 1), opens("acme", 6))
    assert b"".join(taken.parts(False)).count(b"} 5\n") == 1
    assert store.exposition is not taken and store.generation == generation + 1


def test_readiness_counts_attempts_not_successes() -> None:
    store = Store(["acme", "beta"])
    assert store.pending() == ["acme", "beta"]
    store.update("acme", up("acme", 0), attempted=False)  # the initial health, before any poll
    assert store.pending() == ["acme", "beta"]
    store.update("acme", up("acme", 0))
    assert store.pending() == ["beta"]
    store.update("beta", up("beta", 1), opens("beta", 1))
    assert store.pending() == []


def test_set_accounts_keeps_known_ones_and_drops_removed_ones_at_once() -> None:
    store = Store(["acme", "beta"])
    store.update("acme", up("acme", 1), opens("acme", 5))
    store.update("beta", up("beta", 1))
    store.set_accounts(["gamma", "acme"])
    assert lines(store) == [
        'pinpointe_autoresponder_opens{account="acme"} 5',
        'pinpointe_up{account="acme"} 1',
    ]
    assert store.pending() == ["gamma"]
    store.update("beta", up("beta", 0))  # a removed account's last poll lands nowhere
    assert "beta" not in "".join(lines(store))


def test_process_samples_are_served_once_beside_the_accounts() -> None:
    store = Store(["acme"])
    name = "pinpointe_exporter_config_last_reload_successful"
    store.set_process({name: Chunk.of(f"{name} 1\n".encode())})
    text = b"".join(store.exposition.parts(False)).decode()
    assert text.count(f"\n{name} 1\n") == 1
