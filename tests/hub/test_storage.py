"""Storage against real databases (SQLite and PostgreSQL): migrations, secrets at rest, the webhook
inbox, bindings, sync runs and source locks."""

from __future__ import annotations

import random
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from hub.crypto import SecretBox
from hub.db import MIGRATIONS
from hub.merchants import connect, create_merchant
from hub.models import Base, Binding, SyncRun, WebhookEvent, utcnow
from hub.runtime import Hub
from hub.settings import Settings
from sync import locks, runs
from sync.ledger import Ledger, Source


def build_hub(database_url: str, instance: Path, encryption_key: str | None = None) -> Hub:
    return Hub(Settings.from_env(database_url=database_url, instance_path=instance, encryption_key=encryption_key))


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[Hub]:
    h = build_hub(database_url, tmp_path / "instance")
    yield h
    h.close()


def new_merchant(hub: Hub, name: str = "Acme") -> int:
    with hub.session() as s:
        return create_merchant(s, name).id


def open_pending(hub: Hub, merchant_id: int, source_id: str = "4501", trigger: str = "orders/create") -> int:
    with hub.session() as s:
        run, _new = runs.open_run(s, merchant_id=merchant_id, kind="order", platform="shopify",
                                  source_id=source_id, source_name="#1001", trigger=trigger)
        return run.id


# --- migrations -------------------------------------------------------------------------------------

def test_migrations_bring_an_empty_database_to_head_and_are_idempotent(database_url: str, tmp_path: Path) -> None:
    first = build_hub(database_url, tmp_path / "instance")
    try:
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        with first.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head
            # the migrations create exactly what the models describe
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert set(Base.metadata.tables) <= set(inspect(first.engine).get_table_names())
        merchant_id = new_merchant(first)
    finally:
        first.close()

    second = build_hub(database_url, tmp_path / "instance")  # same database: nothing to do, data kept
    try:
        with second.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        with second.session() as s:
            assert s.execute(text("SELECT name FROM merchants WHERE id = :i"), {"i": merchant_id}).scalar() == "Acme"
    finally:
        second.close()


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


# --- secrets at rest --------------------------------------------------------------------------------

TOKEN = "shpat_0123456789abcdef_do_not_leak"


def _connect_shop(hub: Hub, token: str = TOKEN, shop: str = "acme.myshopify.com") -> int:
    with hub.session() as s:
        m = create_merchant(s, "Acme")
        return connect(s, hub.secrets, m, "shopify", shop, {"access_token": token}).id


def _raw_secrets(hub: Hub) -> list[str]:
    with hub.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT secrets FROM connections"))]


def test_secrets_are_encrypted_at_rest_with_a_key_file_generated_once(database_url: str, tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = build_hub(database_url, instance)  # embedded, no O2C_ENCRYPTION_KEY
    try:
        key_file = instance / "encryption.key"
        assert key_file.exists()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text()
        _connect_shop(first)
        [raw] = _raw_secrets(first)
        assert raw and TOKEN not in raw and "access_token" not in raw
        assert first.secrets.decrypt(raw) == {"access_token": TOKEN}
    finally:
        first.close()

    second = build_hub(database_url, instance)
    try:
        assert key_file.read_text() == key  # not regenerated
        [raw] = _raw_secrets(second)
        assert second.secrets.decrypt(raw) == {"access_token": TOKEN}
    finally:
        second.close()


def test_wrong_key_is_a_clear_error_and_old_keys_still_decrypt_after_rotation(database_url: str,
                                                                              tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = build_hub(database_url, tmp_path / "instance", encryption_key=old)
    try:
        _connect_shop(before)
    finally:
        before.close()

    after = build_hub(database_url, tmp_path / "instance", encryption_key=f"{new}, {old}")
    try:
        [raw] = _raw_secrets(after)
        with pytest.raises(ValueError, match="O2C_ENCRYPTION_KEY"):  # the new key alone cannot read it
            SecretBox([new]).decrypt(raw)
        assert after.secrets.decrypt(raw) == {"access_token": TOKEN}
        # new writes use the first key: readable with the new key alone, not with the old one
        rotated = after.secrets.encrypt({"access_token": "fresh"})
        assert SecretBox([new]).decrypt(rotated) == {"access_token": "fresh"}
        with pytest.raises(ValueError, match="O2C_ENCRYPTION_KEY"):
            SecretBox([old]).decrypt(rotated)
        assert SecretBox([new]).decrypt(after.secrets.rotate(raw)) == {"access_token": TOKEN}
    finally:
        after.close()

    with pytest.raises(ValueError, match="O2C_ENCRYPTION_KEY"):  # a malformed key is refused up front
        SecretBox.from_settings("not-a-fernet-key", tmp_path / "other")


# --- webhook inbox ----------------------------------------------------------------------------------

def test_inbox_refuses_a_second_row_for_the_same_delivery(hub: Hub) -> None:
    def event(platform: str, delivery: str) -> WebhookEvent:
        return WebhookEvent(platform=platform, delivery_id=delivery, topic="orders/create", payload="{}")

    with hub.session() as s:
        s.add(event("shopify", "d-1"))
    with pytest.raises(IntegrityError), hub.session() as s:
        s.add(event("shopify", "d-1"))
    with hub.session() as s:  # the same delivery id from another platform is another delivery
        s.add(event("woocommerce", "d-1"))
        s.add(event("shopify", "d-2"))
    with hub.session() as s:
        rows = s.execute(select(WebhookEvent.platform, WebhookEvent.delivery_id)).all()
    assert sorted(rows) == [("shopify", "d-1"), ("shopify", "d-2"), ("woocommerce", "d-1")]


# --- bindings ---------------------------------------------------------------------------------------

def test_binding_twice_keeps_one_row_and_merchants_are_isolated(hub: Hub) -> None:
    m1, m2 = new_merchant(hub, "One"), new_merchant(hub, "Two")
    order = Source("shopify", "order", "4501")
    one, two = Ledger(hub.sessions, m1), Ledger(hub.sessions, m2)

    one.bind(order, "quickbooks", "invoice", "101", data={"doc": "1001"})
    one.bind(order, "quickbooks", "invoice", "102", data={"sync_token": "3"})
    assert one.target_id(order, "quickbooks", "invoice") == "102"
    assert one.find(order, "quickbooks", "invoice").data == {"doc": "1001", "sync_token": "3"}
    one.bind(order, "quickbooks", "payment", "900")  # another target kind: its own binding

    assert two.find(order, "quickbooks", "invoice") is None
    two.bind(order, "quickbooks", "invoice", "555")
    assert one.target_id(order, "quickbooks", "invoice") == "102"
    assert two.target_id(order, "quickbooks", "invoice") == "555"

    with hub.session() as s:
        rows = s.execute(select(Binding.merchant_id, Binding.target_type, Binding.target_id)
                         .order_by(Binding.merchant_id, Binding.target_type)).all()
    assert rows == [(m1, "invoice", "102"), (m1, "payment", "900"), (m2, "invoice", "555")]


# --- sync runs --------------------------------------------------------------------------------------

def test_open_run_absorbs_events_while_a_run_is_pending(hub: Hub) -> None:
    m = new_merchant(hub)
    with hub.session() as s:
        first, new1 = runs.open_run(s, merchant_id=m, kind="order", platform="shopify", source_id="4501",
                                    source_name=None, trigger="orders/create")
    with hub.session() as s:
        second, new2 = runs.open_run(s, merchant_id=m, kind="order", platform="shopify", source_id="4501",
                                     source_name="#1001", trigger="orders/updated")
        other, new3 = runs.open_run(s, merchant_id=m, kind="order", platform="shopify", source_id="4502",
                                    source_name="#1002", trigger="orders/create")
    assert (new1, new2, new3) == (True, False, True)
    assert second.id == first.id != other.id
    with hub.session() as s:
        run = s.get(SyncRun, first.id)
        assert (run.status, run.trigger, run.source_name) == ("pending", "orders/updated", "#1001")

    # once the run is being worked on, a new event needs a new run (the running one may have read stale data)
    assert runs.claim(hub.sessions, first.id, 30) is not None
    with hub.session() as s:
        third, new4 = runs.open_run(s, merchant_id=m, kind="order", platform="shopify", source_id="4501",
                                    source_name="#1001", trigger="orders/paid")
    assert new4 and third.id not in (first.id, other.id)


def test_claim_is_atomic_across_threads(hub: Hub) -> None:
    run_id = open_pending(hub, new_merchant(hub))
    contenders = 6
    barrier = threading.Barrier(contenders)
    results: list[object] = []
    errors: list[BaseException] = []

    def contend() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(runs.claim(hub.sessions, run_id, 30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    winners = [r for r in results if r is not None]
    assert len(results) == contenders and len(winners) == 1
    with hub.session() as s:
        run = s.get(SyncRun, run_id)
        assert (run.status, run.attempts, len(run.attempt_log)) == ("running", 1, 1)


def test_lapsed_leases_and_requeued_failures_are_due_again(hub: Hub) -> None:
    m = new_merchant(hub)
    run_id = open_pending(hub, m)
    assert (run_id, "pending") in runs.due_runs(hub.sessions)
    assert runs.claim(hub.sessions, run_id, lease_seconds=0.2) is not None
    assert run_id not in [r for r, _ in runs.due_runs(hub.sessions)]
    assert runs.claim(hub.sessions, run_id, 30) is None  # its worker is alive: nobody else gets it

    time.sleep(0.35)  # the worker died: the lease runs out
    assert (run_id, "running") in runs.due_runs(hub.sessions)
    again = runs.claim(hub.sessions, run_id, 30)
    assert again is not None and again.attempts == 2
    with hub.session() as s:
        assert [a.number for a in s.get(SyncRun, run_id).attempt_log] == [1, 2]

    # support re-runs a failed run: it is pending and due again; a running run is left alone
    failed = open_pending(hub, m, "4502")
    runs.claim(hub.sessions, failed, 30)
    runs.finish(hub.sessions, failed, "failed", reason="mapping: no SKU", error_kind="mapping")
    assert failed not in [r for r, _ in runs.due_runs(hub.sessions)]
    assert runs.requeue(hub.sessions, [failed, run_id]) == [failed]
    with hub.session() as s:
        run = s.get(SyncRun, failed)
        assert (run.status, run.reason, run.error_kind, run.finished_at, run.trigger) == (
            "pending", None, None, None, "retry")
        assert s.get(SyncRun, run_id).status == "running"
    assert (failed, "pending") in runs.due_runs(hub.sessions)


def test_backoff_is_exponential_capped_jittered_and_honours_retry_after() -> None:
    # pure arithmetic: no database involved, so not parametrized over the databases
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [runs.backoff(n, base=2, cap=60, rng=Top()) for n in range(1, 9)]
    assert ceilings == [2, 4, 8, 16, 32, 60, 60, 60]

    rng = random.Random(1234)
    samples = [runs.backoff(4, base=2, cap=60, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 16 for d in samples)
    assert len(set(samples)) > 150  # jitter: retries of many runs do not line up
    assert max(samples) > 12 and min(samples) < 4
    assert all(runs.backoff(10, base=2, cap=60, rng=rng) <= 60 for _ in range(200))

    assert all(runs.backoff(1, base=2, cap=60, retry_after=30, rng=rng) >= 30 for _ in range(50))
    assert runs.backoff(9, base=2, cap=60, retry_after=120, rng=rng) == 120  # beyond the cap, still honoured


# --- source locks -----------------------------------------------------------------------------------

def test_source_locks_have_one_holder_until_expiry_or_release(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "1:shopify:4501"
    now = [utcnow()]   # the locks' clock, moved by hand: a slow machine cannot let a lease lapse early
    monkeypatch.setattr(locks, "utcnow", lambda: now[0])
    assert locks.try_acquire(hub.sessions, key, "worker-a", ttl=5)
    assert not locks.try_acquire(hub.sessions, key, "worker-b", ttl=30)
    assert locks.try_acquire(hub.sessions, key, "worker-a", ttl=5)  # the holder may renew
    assert locks.try_acquire(hub.sessions, "1:shopify:4502", "worker-b", ttl=30)  # other keys are free

    now[0] += timedelta(seconds=4)
    assert not locks.try_acquire(hub.sessions, key, "worker-b", ttl=30)  # renewed: 5 s from the renewal
    now[0] += timedelta(seconds=2)
    assert locks.try_acquire(hub.sessions, key, "worker-b", ttl=30)  # a holder that died loses it
    monkeypatch.undo()
    assert not locks.try_acquire(hub.sessions, key, "worker-a", ttl=30)

    locks.release(hub.sessions, key, "worker-a")  # not the holder: changes nothing
    assert not locks.try_acquire(hub.sessions, key, "worker-c", ttl=30)
    locks.release(hub.sessions, key, "worker-b")
    assert locks.try_acquire(hub.sessions, key, "worker-c", ttl=30)

    # held(): waits, then LockBusy; holds for the block and releases after it
    key = "1:shopify:4601"
    assert locks.try_acquire(hub.sessions, key, "someone-else", ttl=30)
    started = time.monotonic()
    with pytest.raises(locks.LockBusy), locks.held(hub.sessions, key, wait=0.2):
        pytest.fail("the block must not run while another holder has the lock")
    assert 0.2 <= time.monotonic() - started < 5
    locks.release(hub.sessions, key, "someone-else")

    with locks.held(hub.sessions, key, wait=1):
        assert not locks.try_acquire(hub.sessions, key, "someone-else", ttl=30)
    assert locks.try_acquire(hub.sessions, key, "someone-else", ttl=30)


def test_many_source_locks_are_taken_all_or_none_and_released_together(hub: Hub) -> None:
    keys = {f"1:item:{n}": "batch-a" for n in range(5)}
    assert locks.try_acquire_all(hub.sessions, keys, ttl=30)
    assert not any(locks.try_acquire(hub.sessions, k, "batch-b", ttl=30) for k in keys)
    # one of them held: none taken (the caller falls back to one by one)
    assert locks.try_acquire(hub.sessions, "1:item:9", "worker-c", ttl=0.2)
    assert not locks.try_acquire_all(hub.sessions, {"1:item:8": "batch-b", "1:item:9": "batch-b"}, ttl=30)
    assert locks.try_acquire(hub.sessions, "1:item:8", "worker-d", ttl=30)
    locks.release_all(hub.sessions, {**keys, "1:item:0": "not-the-holder"})   # only its own holder's rows
    assert not locks.try_acquire(hub.sessions, "1:item:0", "batch-b", ttl=30)
    assert all(locks.try_acquire(hub.sessions, k, "batch-b", ttl=30) for k in list(keys)[1:])

    # held_all(): one statement when all are free; one by one (taking over a lapsed lock) when not
    time.sleep(0.35)   # 1:item:9's holder died
    with locks.held_all(hub.sessions, ["1:item:20", "1:item:9", "1:item:20"], wait=1):
        assert not locks.try_acquire(hub.sessions, "1:item:9", "worker-e", ttl=30)
        assert not locks.try_acquire(hub.sessions, "1:item:20", "worker-e", ttl=30)
    assert locks.try_acquire(hub.sessions, "1:item:9", "worker-e", ttl=30)
    with pytest.raises(locks.LockBusy), locks.held_all(hub.sessions, ["1:item:30", "1:item:9"], wait=0.2):
        pytest.fail("the block must not run while another holder has one of the locks")
    assert locks.try_acquire(hub.sessions, "1:item:30", "worker-e", ttl=30)   # what it took is given back
