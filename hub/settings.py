"""Settings from the environment (all optional: the defaults give the embedded mode)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hub import scrubbing


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = _env(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str | None
    secret_key: str | None
    encryption_key: str | None
    public_url: str
    shopify_api_key: str | None
    shopify_api_secret: str | None
    shopify_api_secret_previous: str | None
    quickbooks_client_id: str | None
    quickbooks_client_secret: str | None
    quickbooks_environment: str
    quickbooks_webhook_verifier_token: str | None
    hubspot_client_id: str | None
    hubspot_client_secret: str | None
    shopify_api_url: str | None
    quickbooks_api_url: str | None
    quickbooks_oauth_url: str | None
    hubspot_api_url: str | None
    queue_name: str
    run_lease_seconds: float
    sweep_interval: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    embedded_threads: int
    http_timeout: float
    catchup_interval: float = 300.0
    # seconds a merchant's webhook orders gather before one batch syncs them (0 = one at a time)
    batch_window: float = 0.5
    # ``expiring`` (offline tokens with a refresh token) or ``classic`` Shopify tokens for new connections
    shopify_token_kind: str = "expiring"
    # alerts (sync/alerts.py): a webhook and/or e-mail over SMTP; none configured means no alerts
    alert_webhook_url: str | None = None
    alert_email_to: tuple[str, ...] = ()
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_starttls: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the app secrets are held as they load, so no stored text ever shows one (hub.scrubbing)
        scrubbing.hold(self.secret_key, self.shopify_api_secret, self.shopify_api_secret_previous,
                       self.quickbooks_client_secret, self.quickbooks_webhook_verifier_token,
                       self.hubspot_client_secret, self.smtp_password,
                       *(self.encryption_key or "").split(","), pinned=True)

    @property
    def scale_out(self) -> bool:
        return bool(self.redis_url)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        instance = Path(_env("O2C_INSTANCE_PATH", os.path.join(os.getcwd(), "instance"))).resolve()
        values = dict(
            instance_path=instance,
            database_url=_env("O2C_DATABASE_URL", f"sqlite:///{instance / 'o2c.sqlite3'}"),
            redis_url=_env("O2C_REDIS_URL"),
            secret_key=_env("O2C_SECRET_KEY"),
            encryption_key=_env("O2C_ENCRYPTION_KEY"),
            public_url=(_env("O2C_PUBLIC_URL", "http://127.0.0.1:5000") or "").rstrip("/"),
            shopify_api_key=_env("SHOPIFY_API_KEY"),
            shopify_api_secret=_env("SHOPIFY_API_SECRET"),
            shopify_api_secret_previous=_env("SHOPIFY_API_SECRET_PREVIOUS"),
            quickbooks_client_id=_env("QUICKBOOKS_CLIENT_ID"),
            quickbooks_client_secret=_env("QUICKBOOKS_CLIENT_SECRET"),
            quickbooks_environment=_env("QUICKBOOKS_ENVIRONMENT", "production") or "production",
            quickbooks_webhook_verifier_token=_env("QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN"),
            hubspot_client_id=_env("HUBSPOT_CLIENT_ID"),
            hubspot_client_secret=_env("HUBSPOT_CLIENT_SECRET"),
            shopify_api_url=_strip(_env("O2C_SHOPIFY_API_URL")),
            quickbooks_api_url=_strip(_env("O2C_QUICKBOOKS_API_URL")),
            quickbooks_oauth_url=_strip(_env("O2C_QUICKBOOKS_OAUTH_URL")),
            hubspot_api_url=_strip(_env("O2C_HUBSPOT_API_URL")),
            queue_name=_env("O2C_QUEUE", "o2c") or "o2c",
            run_lease_seconds=_float("O2C_RUN_LEASE_SECONDS", 30.0),
            sweep_interval=_float("O2C_SWEEP_INTERVAL", 2.0),
            max_attempts=int(_float("O2C_MAX_ATTEMPTS", 8)),
            backoff_base=_float("O2C_BACKOFF_BASE", 2.0),
            backoff_cap=_float("O2C_BACKOFF_CAP", 900.0),
            embedded_threads=int(_float("O2C_EMBEDDED_THREADS", 4)),
            http_timeout=_float("O2C_HTTP_TIMEOUT", 30.0),
            catchup_interval=_float("O2C_CATCHUP_INTERVAL", 300.0),
            batch_window=_batch_window(),
            shopify_token_kind=(_env("SHOPIFY_TOKEN_KIND") or "expiring").strip().lower(),
            alert_webhook_url=_env("O2C_ALERT_WEBHOOK_URL"),
            alert_email_to=tuple(a.strip() for a in (_env("O2C_ALERT_EMAIL_TO") or "").split(",") if a.strip()),
            smtp_host=_env("O2C_SMTP_HOST"),
            smtp_port=int(_float("O2C_SMTP_PORT", 25)),
            smtp_user=_env("O2C_SMTP_USER"),
            smtp_password=_env("O2C_SMTP_PASSWORD"),
            smtp_from=_env("O2C_SMTP_FROM"),
            smtp_starttls=(_env("O2C_SMTP_STARTTLS") or "0").lower() in ("1", "true", "yes", "on"),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _batch_window() -> float:
    raw = _env("O2C_BATCH_WINDOW")
    try:
        return max(0.0, float(raw)) if raw is not None and raw.strip() else 0.5
    except ValueError as exc:
        raise ValueError(f"O2C_BATCH_WINDOW must be a number of seconds, not {raw!r}") from exc


def _strip(url: str | None) -> str | None:
    return url.rstrip("/") if url else None
