"""``hub.scrubbing``: what the hub stores from outside is cut free of secrets as it is written, whichever way
it is written (ORM flush, Core ``update``/``insert``), on SQLite and PostgreSQL; the secrets it holds (settings,
every connection secret through ``SecretBox``) and credential-looking values of the platforms' formats;
ordinary words, ids and e-mails survive; scrubbing is idempotent."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update
from sqlalchemy.types import JSON, String, Text

from connectors.redact import REDACTED, scrub_secrets
from hub import scrubbing
from hub.audit import record
from hub.crypto import SecretBox
from hub.merchants import create_merchant
from hub.models import Base, SyncAttempt, SyncRun, SyncStep, utcnow
from hub.runtime import Hub
from hub.settings import Settings

# columns named like this hold what platforms answered or exceptions said: they must scrub what they store
OUTSIDE_TEXT = {"reason", "status_reason", "error", "error_code", "message", "excerpt", "detail", "problems"}

KNOWN_FORMATS = [
    "shpat_" + "0a1b2c3d" * 4, "shpss_" + "9f8e7d6c" * 4, "shprt_" + "1234abcd" * 4,
    "ck_" + "a1" * 20, "cs_" + "b2" * 20,
    "AB11726000000" + "xYz9" * 9,
    "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..Fq2aWq9c8dGfKx0aPx3ZbA.abcDEF123ghiJKL456",
    "pat-na1-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "na1-1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b",
    "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4",
    "o2c_" + "Q" * 43,
]


@pytest.mark.parametrize("token", KNOWN_FORMATS)
def test_tokens_of_known_formats_are_cut_out_of_free_text(token: str) -> None:
    for text_ in (f"refused {token} today", f"({token})", f"token:{token}.", f'{{"note": "{token}"}}'):
        clean = scrub_secrets(text_)
        assert token not in clean and REDACTED in clean, text_


@pytest.mark.parametrize("text_, leaked", [
    ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
    ("authorization=Basic Y2tfMTpjc18xMjM0NTY=", "Y2tfMTpjc18xMjM0NTY="),
    ("X-Shopify-Access-Token: 12345abcdef", "12345abcdef"),
    ("GET /x?access_token=tok123456&page=2", "tok123456"),
    ("grant_type=refresh_token&refresh_token=rt-98765&client_secret=cs-secret-1", "rt-98765"),
    ('cut {"refresh_token": "rt-5555555", "clientSecret": "cs-666666"', "rt-5555555"),
    ("{'access_token': 'py-repr-token-1', 'expires_in': 3600}", "py-repr-token-1"),
    ('{"x_api_key": 1234567890, "id": 3}', "1234567890"),
])
def test_credential_looking_values_are_cut_out(text_: str, leaked: str) -> None:
    clean = scrub_secrets(text_)
    assert leaked not in clean and REDACTED in clean


@pytest.mark.parametrize("kept", [
    "quickbooks: Invalid Reference Id (code 2500): Item 99 for ada@example.com",
    "message=ThrottleExceeded; errorCode=003001; statusCode=429",
    "Stale object: SyncToken=3 is not the current one",
    "HubSpot answered HTTP 400: correlationId 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    "gid://shopify/Order/5550001234 #1001 token_type=bearer",
    'WWW-Authenticate: Bearer realm="Intuit"',
    "CustomerRef 58 has no DisplayName; TaxCodeRef NON",
])
def test_ordinary_texts_survive(kept: str) -> None:
    assert scrub_secrets(kept) == kept
    assert scrubbing.scrub_text(kept) == kept


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " :=&\"'{},._-/", max_size=80)


@settings(max_examples=150, deadline=None)
@given(before=_TEXT, after=_TEXT, secret=st.text(alphabet=string.ascii_letters + string.digits + "-_",
                                                   min_size=scrubbing.MIN_SECRET, max_size=40))
def test_a_held_secret_never_survives_and_scrubbing_is_idempotent(before: str, after: str, secret: str) -> None:
    with own_registry():    # random values held here must not cut words out of other tests' texts
        scrubbing.hold(secret)
        once = scrubbing.scrub_text(before + secret + after)
        assert secret not in once
        assert scrubbing.scrub_text(once) == once
        assert scrubbing.scrub_value({"note": [before + secret]}) == {"note": [scrubbing.scrub_text(before + secret)]}


@contextlib.contextmanager
def own_registry() -> Iterator[None]:
    held = scrubbing._held
    scrubbing._held = scrubbing._Registry()
    try:
        yield
    finally:
        scrubbing._held = held


def test_the_registry_holds_what_the_secret_box_opens_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = scrubbing._Registry()
    monkeypatch.setattr(scrubbing, "_held", fresh)
    box = SecretBox([Fernet.generate_key().decode()])
    assert scrubbing.scrub_text("seen tok-opened-by-the-box") == "seen tok-opened-by-the-box"
    blob = box.encrypt({"access_token": "tok-opened-by-the-box", "scope": "com.intuit.quickbooks.accounting",
                        "short": "abc"})
    assert scrubbing.scrub_text("seen tok-opened-by-the-box") == f"seen {REDACTED}"
    assert scrubbing.scrub_text("scope com.intuit.quickbooks.accounting") == "scope com.intuit.quickbooks.accounting"
    assert box.decrypt(blob)["access_token"] == "tok-opened-by-the-box"

    monkeypatch.setattr(scrubbing, "RECENT_LIMIT", 300)
    scrubbing.hold("pinned-app-secret-1", pinned=True)
    tokens = [f"rotated-token-{n:05d}" for n in range(1000)]     # more than the plain search handles
    for token in tokens:
        scrubbing.hold(token)
    assert scrubbing.held_count() <= 300 + 5
    recent = " ".join(tokens[-200:])
    assert tokens[-1] not in scrubbing.scrub_text(recent) and "rotated-token" not in scrubbing.scrub_text(recent)
    assert scrubbing.scrub_text("app pinned-app-secret-1!") == f"app {REDACTED}!"
    # its URL-encoded and JSON-escaped forms too
    scrubbing.hold("sl/ash+plus=eq")
    assert scrubbing.scrub_text("u?t=sl%2Fash%2Bplus%3Deq") == f"u?t={REDACTED}"


def test_settings_hold_the_app_secrets_as_they_load(tmp_path: Path) -> None:
    Settings.from_env(instance_path=tmp_path, quickbooks_client_secret="qb-app-secret-from-settings",
                      hubspot_client_secret="hs-app-secret-from-settings")
    assert scrubbing.scrub_text("qb-app-secret-from-settings hs-app-secret-from-settings") == \
        f"{REDACTED} {REDACTED}"


def test_every_column_of_outside_text_scrubs_what_it_stores() -> None:
    import hub.order_models  # noqa: F401 - every table of the hub

    plain = [f"{table.name}.{column.name}" for table in Base.metadata.tables.values() for column in table.columns
             if column.name in OUTSIDE_TEXT and isinstance(column.type, Text | String | JSON)
             and not isinstance(column.type, scrubbing.ScrubbedText | scrubbing.ScrubbedString
                                | scrubbing.ScrubbedJSON)]
    assert plain == [], f"use hub.scrubbing's column types for {plain}"


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[Hub]:
    h = Hub(Settings.from_env(database_url=database_url, instance_path=tmp_path / "instance", encryption_key=None))
    yield h
    h.close()


def test_every_write_path_stores_scrubbed_text(hub: Hub) -> None:
    secret = "held-canary-9f7e6d5c4b3a"
    scrubbing.hold(secret)
    with hub.session() as s:
        merchant_id = create_merchant(s, "Acme").id
        run = SyncRun(merchant_id=merchant_id, kind="order", source_platform="shopify", source_id="1",
                      status="failed", attempts=1, reason=f"orm insert {secret}",
                      error_code=("x" * 95) + secret)
        s.add(run)
        s.flush()
        s.add(SyncAttempt(run_id=run.id, number=1, error=f"Bearer {secret}", excerpt={
            "request": {"url": f"https://qb.example/v3?access_token={secret}", "body": f'{{"note": "{secret}"}}'},
            "response": {"status": 400, "body": f"echo {secret}", "headers": {"Authorization": "x" * 12}}}))
        s.add(SyncStep(run_id=run.id, attempt=1, step="invoice", outcome="skipped", message=f"step {secret}"))
        record(s, "cli", "run.skip", target_type="run", target_id=run.id, detail={"reason": f"pasted {secret}",
                                                                                  "api_token": "o2c_x"})
        run_id = run.id
    rows = _raw(hub)
    assert secret not in rows and rows.count(REDACTED) >= 7, rows
    with hub.session() as s:
        assert len(s.get(SyncRun, run_id).error_code) == 100          # still fits its column
        s.get(SyncRun, run_id).reason = f"orm update {secret}"
    assert secret not in _raw(hub) and "orm update [redacted]" in _raw(hub)
    with hub.session() as s:                                           # Core statements, as the ORM's bulk paths
        s.execute(update(SyncRun).where(SyncRun.id == run_id).values(reason=f"core update {secret}"))
        s.execute(insert(SyncStep).values(run_id=run_id, attempt=2, step="payment", outcome="skipped",
                                          message=f"core insert {secret}", at=utcnow()))
    rows = _raw(hub)
    assert secret not in rows and "core update [redacted]" in rows and "core insert [redacted]" in rows
    with hub.session() as s:                                           # comparisons see the stored form
        assert s.scalar(select(SyncRun.id).where(SyncRun.reason == f"core update {secret}")) == run_id


def _raw(hub: Hub) -> str:
    with hub.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in ("sync_runs", "sync_attempts", "sync_steps", "audit_log")
                         for row in conn.execute(text(f"SELECT * FROM {table}")))
