"""The hub's tables: merchants, their connections, the webhook inbox, sync runs and bindings.

Times are naive UTC (``utcnow()``) on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.scrubbing import ScrubbedJSON, ScrubbedString, ScrubbedText  # outside text: scrubbed of secrets as written


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime()}


class Merchant(Base):
    __tablename__ = "merchants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    connections: Mapped[list[Connection]] = relationship(back_populates="merchant")


class MappingRuleSet(Base):
    """A merchant's mapping-rule overrides (merged onto ``config/default_rules.yaml``) and the result of
    the last check of the QuickBooks objects they name."""

    __tablename__ = "mapping_rules"
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    problems: Mapped[dict[str, Any] | None] = mapped_column(ScrubbedJSON)   # {"missing": [...], "error": ...}
    checked_at: Mapped[datetime | None]


class MappingRuleVersion(Base):
    """One saved version of a merchant's mapping rules: the overrides as saved, who saved them and how
    (``console``, ``cli``, or a ``rollback`` to an earlier version), so history, diffs and rollbacks need
    nothing but this table. Written in the same transaction as the ``mapping_rules`` row it copies."""

    __tablename__ = "mapping_rule_versions"
    __table_args__ = (UniqueConstraint("merchant_id", "version", name="uq_mapping_rule_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    version: Mapped[int] = mapped_column(Integer)
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author: Mapped[str | None] = mapped_column(String(254))
    source: Mapped[str] = mapped_column(String(20), default="console")    # console|cli|rollback
    note: Mapped[str | None] = mapped_column(String(255))                 # "rollback to version 3"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Connection(Base):
    """A merchant's account on one platform. ``secrets`` is Fernet ciphertext, never plain text."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("platform", "account", name="uq_connection_account"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20))      # shopify|woocommerce|quickbooks|hubspot
    account: Mapped[str] = mapped_column(String(255))      # shop domain, realm id, store URL, hub id
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|needs_reconnect|disconnected
    status_reason: Mapped[str | None] = mapped_column(ScrubbedText)
    secrets: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    token_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    merchant: Mapped[Merchant] = relationship(back_populates="connections")


class WebhookEvent(Base):
    """The inbox: one row per delivery, unique per (platform, delivery id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("platform", "delivery_id", name="uq_webhook_delivery"),
                      Index("ix_webhook_events_status", "status", "received_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    account: Mapped[str | None] = mapped_column(String(255))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    # received (stored by the fast path, not yet routed: ``sync.routing``)|queued|ignored|failed|handled
    status: Mapped[str] = mapped_column(String(20), default="received")
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncRun(Base):
    """One piece of work on one source object (an order), with its state and attempts."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_due", "status", "next_attempt_at"),
        Index("ix_sync_runs_source", "merchant_id", "source_platform", "source_id"),
        # a connection's last success on the dashboard (sync.health): the newest succeeded run of its merchant
        Index("ix_sync_runs_finished", "merchant_id", "status", "finished_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))  # the source's
    kind: Mapped[str] = mapped_column(String(20))           # order|payment|refund
    source_platform: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(255))
    source_name: Mapped[str | None] = mapped_column(String(255))
    trigger: Mapped[str | None] = mapped_column(String(100))  # webhook topic, "retry", "backfill"
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(ScrubbedText)
    error_kind: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(ScrubbedString(100))  # the platform's fault code or mapping rule
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    canonical: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    merchant: Mapped[Merchant] = relationship()
    attempt_log: Mapped[list[SyncAttempt]] = relationship(back_populates="run", order_by="SyncAttempt.number")
    steps: Mapped[list[SyncStep]] = relationship(back_populates="run", order_by="SyncStep.id")


class SyncAttempt(Base):
    __tablename__ = "sync_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # succeeded|retrying|failed|deferred
    step: Mapped[str | None] = mapped_column(String(40))
    error_kind: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(ScrubbedString(100))
    error: Mapped[str | None] = mapped_column(ScrubbedText)
    # the failing call, redacted: {"request": {"method", "url", "body"}, "response": {"status", "body"}}
    excerpt: Mapped[dict[str, Any] | None] = mapped_column(ScrubbedJSON)
    run: Mapped[SyncRun] = relationship(back_populates="attempt_log")


class SyncStep(Base):
    """What one step of a run did: created, found, updated or skipped, and the object it bound."""

    __tablename__ = "sync_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(40))           # contact|customer|items|invoice|payment
    outcome: Mapped[str] = mapped_column(String(20))        # created|found|updated|unchanged|skipped
    target_platform: Mapped[str | None] = mapped_column(String(20))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(ScrubbedText)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    run: Mapped[SyncRun] = relationship(back_populates="steps")


class Binding(Base):
    """Our record of which external object stands for which source object."""

    __tablename__ = "bindings"
    __table_args__ = (
        UniqueConstraint("merchant_id", "source_platform", "source_type", "source_id", "source_store",
                         "target_platform", "target_type", name="uq_binding"),
        Index("ix_bindings_target", "target_platform", "target_type", "target_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    source_platform: Mapped[str] = mapped_column(String(20))
    source_type: Mapped[str] = mapped_column(String(40))    # order|buyer|sku|shipping
    source_id: Mapped[str] = mapped_column(String(255))
    # the store whose ids ``source_id`` is unique within: a WooCommerce order's store URL; "" for Shopify's
    # global ids and the hub's own sources (buyers, SKUs), which belong to the merchant
    source_store: Mapped[str] = mapped_column(String(255), default="", server_default="")
    target_platform: Mapped[str] = mapped_column(String(20))
    target_type: Mapped[str] = mapped_column(String(40))    # contact|customer|item|invoice|payment
    target_id: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreateAttempt(Base):
    """A note, committed before a create is sent, that the hub asked a platform to create ``target_type`` for
    a source: only a source with a note and no binding may have an object the hub does not know of (an
    answer lost, a worker killed before its binding), so only those are looked up before a create; and how
    often the platform refused it (each refusal gives the next request a new ``requestid``)."""

    __tablename__ = "create_attempts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "source_platform", "source_type", "source_id", "source_store",
                         "target_platform", "target_type", name="uq_create_attempt"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    source_platform: Mapped[str] = mapped_column(String(20))
    source_type: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(255))
    source_store: Mapped[str] = mapped_column(String(255), default="", server_default="")
    target_platform: Mapped[str] = mapped_column(String(20))
    target_type: Mapped[str] = mapped_column(String(40))
    # how many times the platform refused it outright: a refused ``requestid`` answers the same refusal
    # forever, so the next try (after a fix) asks with a new one
    refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sync_run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SourceLock(Base):
    """One row per source object being worked on: events for the same order are serialised."""

    __tablename__ = "source_locks"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime]


class User(Base):
    """Someone who signs in to the support console: ``support`` and ``admin`` see every merchant, a
    ``merchant`` user only its own. ``password_hash`` is a werkzeug hash, never the password.
    ``session_version`` is copied into each console session at sign-in; bumping it (sign-out, disable,
    password or role change) ends every session of the user on the server side."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)     # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))                    # support|admin|merchant
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditEntry(Base):
    """Who did what to which object, and when (console actions, sign-ins, users created by the CLI).
    ``merchant_id`` is the merchant the target belongs to, so merchant users see their own entries."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor", "action", "actor", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))                  # an e-mail, or "cli"
    action: Mapped[str] = mapped_column(String(40))                  # run.rerun, run.skip, login.failed, …
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(255))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(ScrubbedJSON, default=dict)


class ApiToken(Base):
    """A bearer token for the JSON API (only its sha256 is stored), acting as ``user_id``'s role."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AlertSent(Base):
    """One alert notification: at most one per cause and channel per hour."""

    __tablename__ = "alerts_sent"
    __table_args__ = (Index("ix_alerts_sent_cause", "cause", "channel", "sent_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cause: Mapped[str] = mapped_column(String(255))      # e.g. "run.failed:quickbooks:6000" or "reconnect:12"
    channel: Mapped[str] = mapped_column(String(20))     # webhook|email
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[dict[str, Any]] = mapped_column(ScrubbedJSON, default=dict)


# the console lists runs newest first, filtered by status or merchant: keyset pages (id < cursor) on these
Index("ix_sync_runs_status_id", SyncRun.status, SyncRun.id)
Index("ix_sync_runs_merchant_id", SyncRun.merchant_id, SyncRun.id)

from hub import auth_models, oauth_models, receivables_models, task_models  # noqa: E402,F401 - their tables join Base.metadata (checked against the migrations)
