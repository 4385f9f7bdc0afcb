"""The ``o2c`` command line as scripts use it: ids as the last word, exit codes 0/1/2, one-line errors on
stderr, secrets never echoed, and the JSON of ``syncs list`` / ``syncs show``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from rq import Queue

from cli.main import main as o2c
from hub.merchants import create_merchant
from hub.models import SyncStep
from hub.runtime import Hub
from hub.settings import Settings
from sync import runs
from sync.dispatch import job_id
from sync.ledger import Ledger, Source

O2C = Path(sys.executable).parent / "o2c"
SHOP_TOKEN = "shpat_cli_secret_4f9a7c"
QB_ACCESS, QB_REFRESH = "qb-access-secret-81d2", "qb-refresh-secret-77ab"
HS_ACCESS, HS_REFRESH = "hs-access-secret-5e10", "hs-refresh-secret-c3c3"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An embedded hub in a fresh instance folder, configured the way an operator would."""
    for name in list(os.environ):
        if name.startswith("O2C_"):
            monkeypatch.delenv(name)
    values = {"O2C_INSTANCE_PATH": str(tmp_path / "instance"),
              "O2C_DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'o2c.sqlite3'}"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def run(*args: str) -> Result:
    return CliRunner().invoke(o2c, list(args))


def last_word(result: Result) -> int:
    assert result.exit_code == 0, (result.output, result.stderr)
    return int(result.stdout.split()[-1])


def stderr_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def o2c_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(O2C), *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def everything_written(tmp_path: Path) -> bytes:
    """Every byte the hub left in its instance folder (database, WAL, key file)."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())


# --- merchants and connections ----------------------------------------------------------------------

def test_merchant_create_prints_the_id_last(env: dict[str, str]) -> None:
    first, second = run("merchant", "create", "Acme Outdoor"), run("merchant", "create", "Birch & Co")
    assert last_word(second) == last_word(first) + 1
    assert "Birch & Co" in second.stdout

    blank = run("merchant", "create", "  ")
    assert blank.exit_code == 1
    assert stderr_line(blank)


def test_connect_prints_the_connection_id_and_never_the_secrets(env: dict[str, str], tmp_path: Path) -> None:
    merchant = str(last_word(run("merchant", "create", "Acme")))

    shop = run("connect", "shopify", merchant, "--shop", "https://Acme-Outdoor.myshopify.com/",
               "--access-token", SHOP_TOKEN)
    qb = run("connect", "quickbooks", merchant, "--realm-id", "9130354",
             "--access-token", QB_ACCESS, "--refresh-token", QB_REFRESH)
    hs = run("connect", "hubspot", "Acme", "--access-token", HS_ACCESS, "--refresh-token", HS_REFRESH)
    ids = [last_word(r) for r in (shop, qb, hs)]
    assert len(set(ids)) == 3
    assert "acme-outdoor.myshopify.com" in shop.stdout  # normalised

    # connecting the same account again updates it (same id), e.g. after a token change
    again = run("connect", "shopify", merchant, "--shop", "acme-outdoor.myshopify.com", "--access-token", "new")
    assert last_word(again) == ids[0]

    secrets = (SHOP_TOKEN, QB_ACCESS, QB_REFRESH, HS_ACCESS, HS_REFRESH)
    for result in (shop, qb, hs):
        assert not any(s in result.output or s in result.stderr for s in secrets)
    stored = everything_written(tmp_path)
    assert not any(s.encode() in stored for s in secrets)  # encrypted at rest too


def test_connect_refuses_bad_input(env: dict[str, str]) -> None:
    merchant = str(last_word(run("merchant", "create", "Acme")))

    bad_shop = run("connect", "shopify", merchant, "--shop", "evil.com", "--access-token", SHOP_TOKEN)
    assert bad_shop.exit_code == 2, bad_shop.output
    assert "--shop" in bad_shop.stderr and SHOP_TOKEN not in bad_shop.output + bad_shop.stderr

    missing_option = run("connect", "quickbooks", merchant, "--realm-id", "1", "--access-token", QB_ACCESS)
    assert missing_option.exit_code == 2

    for args in (["shopify", "404", "--shop", "a.myshopify.com", "--access-token", SHOP_TOKEN],
                 ["quickbooks", "Nobody", "--realm-id", "1", "--access-token", QB_ACCESS,
                  "--refresh-token", QB_REFRESH],
                 ["hubspot", "404", "--access-token", HS_ACCESS]):
        unknown = run("connect", *args)
        assert unknown.exit_code == 1, unknown.output
        assert "404" in stderr_line(unknown) or "Nobody" in unknown.stderr
        assert unknown.stdout == ""
        assert not any(s in unknown.stderr for s in (SHOP_TOKEN, QB_ACCESS, QB_REFRESH, HS_ACCESS))

    # one shop belongs to one merchant
    other = str(last_word(run("merchant", "create", "Other")))
    assert run("connect", "shopify", merchant, "--shop", "a.myshopify.com", "--access-token", "t").exit_code == 0
    taken = run("connect", "shopify", other, "--shop", "a.myshopify.com", "--access-token", "t")
    assert taken.exit_code == 1 and "another merchant" in stderr_line(taken)


def test_the_installed_command_exit_codes_and_stderr(env: dict[str, str]) -> None:
    created = o2c_process("merchant", "create", "Acme", env=env)
    assert created.returncode == 0, created.stderr
    merchant = created.stdout.split()[-1]
    assert merchant.isdigit()

    bad_shop = o2c_process("connect", "shopify", merchant, "--shop", "evil.com", "--access-token", SHOP_TOKEN,
                           env=env)
    assert bad_shop.returncode == 2
    assert "evil.com" in bad_shop.stderr and SHOP_TOKEN not in bad_shop.stdout + bad_shop.stderr

    missing = o2c_process("syncs", "show", "999", env=env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == ["error: no sync run 999"]
    assert missing.stdout == ""


def test_a_bad_encryption_key_is_reported_in_one_line(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_ENCRYPTION_KEY", "not-a-key")
    broken = run("merchant", "create", "Acme")
    assert broken.exit_code == 1
    assert "O2C_ENCRYPTION_KEY" in stderr_line(broken)


def test_help_lists_the_commands(env: dict[str, str]) -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1].split()
    assert {"serve", "worker", "demo", "merchant", "connect", "syncs"} <= set(commands)


# --- syncs ------------------------------------------------------------------------------------------

SUMMARY_KEYS = {"id", "merchant", "kind", "source", "status", "attempts", "reason", "created_at", "updated_at"}


@pytest.fixture
def history(env: dict[str, str]) -> Iterator[dict[str, object]]:
    """Two merchants with a few runs: pending, succeeded (with steps and bindings) and failed ones."""
    hub = Hub(Settings.from_env())
    try:
        with hub.session() as s:
            acme, birch = create_merchant(s, "Acme").id, create_merchant(s, "Birch").id

        def new_run(merchant: int, order_id: str, name: str) -> int:
            with hub.session() as s:
                return runs.open_run(s, merchant_id=merchant, kind="order", platform="shopify",
                                     source_id=order_id, source_name=name, trigger="orders/create")[0].id

        def failed(merchant: int, order_id: str, name: str, reason: str) -> int:
            run_id = new_run(merchant, order_id, name)
            runs.claim(hub.sessions, run_id, 30)
            runs.finish(hub.sessions, run_id, "failed", reason=reason, error_kind="mapping", step="invoice")
            return run_id

        done = new_run(acme, "450001", "#1001")
        runs.claim(hub.sessions, done, 30)
        with hub.session() as s:
            s.add(SyncStep(run_id=done, attempt=1, step="invoice", outcome="created",
                           target_platform="quickbooks", target_type="invoice", target_id="145"))
        Ledger(hub.sessions, acme).bind(Source("shopify", "order", "450001"), "quickbooks", "invoice", "145",
                                        run_id=done)
        runs.finish(hub.sessions, done, "succeeded", step="payment")
        acme_failed = failed(acme, "450002", "#1002", "mapping: line 1 has no SKU")
        birch_failed = failed(birch, "450003", "#1003", "mapping: unknown tax code")
        pending = new_run(birch, "450004", "#1004")
        yield {"acme": acme, "birch": birch, "done": done, "acme_failed": acme_failed,
               "birch_failed": birch_failed, "pending": pending,
               "all": [pending, birch_failed, acme_failed, done]}
    finally:
        hub.close()


def listed(*args: str) -> list[dict]:
    result = run("syncs", "list", "--json", *args)
    assert result.exit_code == 0, (result.output, result.stderr)
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_syncs_list_json_rows_newest_first(history: dict) -> None:
    rows = listed()
    assert [r["id"] for r in rows] == history["all"]  # newest first
    for row in rows:
        assert SUMMARY_KEYS <= set(row)
        assert set(row["source"]) >= {"platform", "id", "name"}
        for stamp in (row["created_at"], row["updated_at"]):
            datetime.fromisoformat(stamp)
    by_id = {r["id"]: r for r in rows}
    failed = by_id[history["acme_failed"]]
    assert failed["kind"] == "order"
    assert failed["source"] == {"platform": "shopify", "id": "450002", "name": "#1002"}
    assert (failed["status"], failed["attempts"], failed["reason"]) == ("failed", 1, "mapping: line 1 has no SKU")
    assert (failed["merchant"], failed["merchant_name"]) == (history["acme"], "Acme")
    assert (by_id[history["pending"]]["status"], by_id[history["pending"]]["reason"]) == ("pending", None)
    assert by_id[history["done"]]["status"] == "succeeded"


def test_syncs_list_filters_and_limit(history: dict) -> None:
    assert [r["id"] for r in listed("--limit", "2")] == history["all"][:2]
    assert [r["id"] for r in listed("--status", "failed")] == [history["birch_failed"], history["acme_failed"]]
    assert [r["id"] for r in listed("--merchant", str(history["acme"]))] == [history["acme_failed"], history["done"]]
    assert [r["id"] for r in listed("--merchant", "Birch", "--status", "failed")] == [history["birch_failed"]]
    assert listed("--status", "running") == []

    assert run("syncs", "list", "--status", "bogus").exit_code == 2
    assert run("syncs", "list", "--limit", "0").exit_code == 2
    unknown = run("syncs", "list", "--merchant", "Nobody")
    assert unknown.exit_code == 1 and "Nobody" in stderr_line(unknown)

    text = run("syncs", "list", "--status", "failed")  # the human view names the order and the reason
    assert text.exit_code == 0 and "#1002" in text.stdout and "no SKU" in text.stdout


def test_syncs_show_adds_steps_bindings_and_attempts(history: dict) -> None:
    result = run("syncs", "show", str(history["done"]), "--json")
    assert result.exit_code == 0, result.output
    detail = json.loads(result.stdout)
    assert SUMMARY_KEYS | {"steps", "bindings", "attempt_log"} <= set(detail)
    assert detail["status"] == "succeeded"
    assert [(s["step"], s["outcome"], s["target"]["id"]) for s in detail["steps"]] == [("invoice", "created", "145")]
    assert [(b["target"]["platform"], b["target"]["type"], b["target"]["id"]) for b in detail["bindings"]] == [
        ("quickbooks", "invoice", "145")]
    assert [b["source"]["id"] for b in detail["bindings"]] == ["450001"]

    failed = json.loads(run("syncs", "show", str(history["acme_failed"]), "--json").stdout)
    [attempt] = failed["attempt_log"]
    assert (attempt["number"], attempt["outcome"], attempt["error"]) == (1, "failed", "mapping: line 1 has no SKU")

    text = run("syncs", "show", str(history["acme_failed"]))
    assert text.exit_code == 0 and "no SKU" in text.stdout

    missing = run("syncs", "show", "999")
    assert missing.exit_code == 1 and stderr_line(missing) == "error: no sync run 999"
    assert run("syncs", "show", "abc").exit_code == 2


def test_syncs_retry_needs_ids_or_failed(history: dict) -> None:
    for args in ([], [str(history["done"]), "--failed"]):
        result = run("syncs", "retry", *args)
        assert result.exit_code == 2, result.output
    missing = run("syncs", "retry", "999")
    assert missing.exit_code == 1 and "999" in stderr_line(missing)


def test_syncs_retry_failed_requeues_them(history: dict, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # scale-out: the re-queued runs wait in the queue for a worker, so their state can be looked at
    queue = f"o2c-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("O2C_REDIS_URL", redis_url)
    monkeypatch.setenv("O2C_QUEUE", queue)

    acme_only = run("syncs", "retry", "--failed", "--merchant", "Acme", "--no-wait")
    assert acme_only.exit_code == 0, (acme_only.output, acme_only.stderr)
    assert "re-queued 1 run(s)" in acme_only.stdout
    assert [r["id"] for r in listed("--status", "failed")] == [history["birch_failed"]]

    everyone = run("syncs", "retry", "--failed", "--no-wait")
    assert everyone.exit_code == 0
    assert "re-queued 1 run(s)" in everyone.stdout and str(history["birch_failed"]) in everyone.stdout
    assert listed("--status", "failed") == []

    by_id = {r["id"]: r for r in listed()}
    for run_id in (history["acme_failed"], history["birch_failed"]):
        assert (by_id[run_id]["status"], by_id[run_id]["reason"]) == ("pending", None)
    assert by_id[history["done"]]["status"] == "succeeded"  # untouched

    with Redis.from_url(redis_url) as conn:
        queued = Queue(queue, connection=conn).job_ids
    assert {job_id(history["acme_failed"]), job_id(history["birch_failed"])} <= set(queued)

    nothing = run("syncs", "retry", "--failed", "--no-wait")
    assert nothing.exit_code == 0 and "re-queued 0 run(s)" in nothing.stdout


def test_syncs_retry_by_id_in_embedded_mode_reruns_the_run(history: dict) -> None:
    result = run("syncs", "retry", str(history["acme_failed"]))  # waits for the re-run by default
    assert result.exit_code == 0, (result.output, result.stderr)
    assert result.stdout.split()[-1] == str(history["acme_failed"])
    detail = json.loads(run("syncs", "show", str(history["acme_failed"]), "--json").stdout)
    assert detail["attempts"] == 2
    assert [a["number"] for a in detail["attempt_log"]] == [1, 2]
    assert detail["attempt_log"][0]["error"] == "mapping: line 1 has no SKU"  # the history is kept
    assert detail["attempt_log"][1]["outcome"] == detail["status"] != "pending"


def test_syncs_retry_no_wait_in_embedded_mode_leaves_the_runs_pending(history: dict) -> None:
    result = run("syncs", "retry", "--failed", "--no-wait")
    assert result.exit_code == 0, (result.output, result.stderr)
    assert "re-queued 2 run(s)" in result.stdout
    rows = {r["id"]: r for r in listed()}
    assert [(rows[i]["status"], rows[i]["attempts"]) for i in (history["acme_failed"], history["birch_failed"])] == [
        ("pending", 1), ("pending", 1)]
