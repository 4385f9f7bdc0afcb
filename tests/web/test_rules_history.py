"""Mapping rules as support works on them in the console, through the real app and pipeline: the defaults'
comments beside the settings, the SKU → QuickBooks item table with the company's items to pick from,
every save a version (author, diff, rollback), the offer to re-run the orders that failed on a rule, and
``o2c mapping import`` audited with its author."""

from __future__ import annotations

import getpass
import html as html_lib
import re
from pathlib import Path

from sqlalchemy import select

from hub.mapping_rules import rule_set, versions
from hub.models import AuditEntry
from sync import qb_items
from tests.helpers import an_order, settled
from tests.web import test_console
from tests.web.test_console import SUPPORT, Console, html, post

console = test_console.console   # the fixture: a hub, its app, a connected shop and a support user

HAT = [{"sku": "HAT-1", "title": "Sun hat", "quantity": 1, "price": "18.00"}]


def audit(console: Console, action: str) -> list[AuditEntry]:
    with console.hub.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def item_options(page: str) -> list[str]:
    datalist = re.search(r'<datalist id="qb-items">(.*?)</datalist>', page, re.S).group(1)
    return [html_lib.unescape(v) for v in re.findall(r'<option value="([^"]*)">', datalist)]


def test_fix_a_rule_re_run_the_orders_it_failed_then_history_diff_and_rollback(console: Console) -> None:
    hub, merchant_id = console.hub, console.shop.merchant_id
    client = console.client()
    page = html(client.get(f"/console/mapping/{merchant_id}"))
    # the defaults' comments: in the YAML above each setting, and in the help table
    assert "# no matching item: create one | use fallback_item | fail the sync\n  when_missing: create" in page
    assert "<code>items.when_missing</code>" in page and "History" in page and "No version saved yet" in page

    console.send(an_order())                       # its SKUs become QuickBooks items (when_missing: create)
    assert [r.status for r in settled(hub)] == ["succeeded"]
    qb_items.forget(hub, merchant_id)
    names = item_options(html(client.get(f"/console/mapping/{merchant_id}")))
    assert "Shipping" in names and len(names) >= 3, names
    tee = next(n for n in names if "tee" in n.lower() or "TEE" in n)

    assert post(client, f"/console/mapping/{merchant_id}", rules="items:\n  when_missing: fail\n").status_code == 302
    console.send(an_order(450_002, 1002, lines=HAT))
    console.send(an_order(450_003, 1003, lines=HAT, email="grace@example.com"))
    console.send(an_order(450_004, 1004))          # known SKUs: in sync
    runs = settled(hub)
    assert [r.status for r in runs] == ["succeeded", "failed", "failed", "succeeded"], [r.reason for r in runs]
    assert {r.error_kind for r in runs if r.status == "failed"} == {"mapping"}

    page = html(client.get(f"/console/mapping/{merchant_id}"))
    assert "2 orders failed on these rules" in page and "Re-run the 2 orders that failed on these rules" in page
    index = html(client.get("/console/mapping"))
    assert re.search(rf'data-merchant="{merchant_id}">.*?<td>1</td>.*?by {SUPPORT}</td>\s*<td>2</td>', index, re.S)
    saved = post(client, f"/console/mapping/{merchant_id}/items", sku=["HAT-1", "", "", ""], item=[tee, "", "", ""])
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    page = html(client.get(f"/console/mapping/{merchant_id}"))
    assert "Mapping rules saved (version 2). 2 orders are failing on a mapping rule" in page
    assert re.search(r'name="sku" value="HAT-1"', page) and f'value="{html_lib.escape(tee)}" list="qb-items"' in page

    missing = post(client, f"/console/mapping/{merchant_id}/items", sku=["HAT-1", "CAP-9"], item=[tee, "No such item"])
    assert missing.status_code == 400 and "items.map.CAP-9" in missing.get_data(as_text=True)

    started = post(client, f"/console/mapping/{merchant_id}/rerun")
    assert started.status_code == 302 and "/console/progress/" in started.headers["Location"]   # followed live
    runs = settled(hub)
    assert [r.status for r in runs] == ["succeeded"] * 4, [r.reason for r in runs]
    [rerun] = audit(console, "rules.rerun_failed")
    assert rerun.actor == SUPPORT and rerun.detail["requeued"] == 2 and rerun.merchant_id == merchant_id
    page = html(client.get(f"/console/mapping/{merchant_id}"))
    assert "failed on these rules" not in page

    with hub.session() as s:
        history = [(v.version, v.author, v.source) for v in versions(s, merchant_id)]
    assert history == [(2, SUPPORT, "console"), (1, SUPPORT, "console")]
    listing = html(client.get(f"/console/mapping/{merchant_id}/versions"))
    assert 'data-version="2"' in listing and 'data-version="1"' in listing and SUPPORT in listing
    diff = html(client.get(f"/console/mapping/{merchant_id}/versions/2"))
    assert f"<ins>+    HAT-1: {html_lib.escape(tee)}</ins>" in diff and "<del>-  map: {}</del>" in diff
    first = html(client.get(f"/console/mapping/{merchant_id}/versions/1"))
    assert "<del>-  when_missing: create</del>" in first and "<ins>+  when_missing: fail</ins>" in first
    assert client.get(f"/console/mapping/{merchant_id}/versions/9").status_code == 404

    assert post(client, f"/console/mapping/{merchant_id}/versions/1/rollback").status_code == 302
    with hub.session() as s:
        row = rule_set(s, merchant_id)
        assert row.version == 3 and row.overrides == {"items": {"when_missing": "fail"}}
        assert versions(s, merchant_id)[0].note == "rollback to version 1"
    [rolled] = audit(console, "rules.rolled_back")
    assert rolled.actor == SUPPORT and rolled.detail["to_version"] == 1 and rolled.detail["version"] == 3
    assert [e.detail["version"] for e in audit(console, "rules.saved")] == [1, 2]
    audit_page = html(client.get("/console/audit"))
    assert "Restored version 1 of the mapping rules" in audit_page


def test_o2c_mapping_import_is_a_version_audited_with_its_author(console: Console, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main as o2c

    merchant_id = console.shop.merchant_id
    rules = tmp_path / "rules.yaml"
    rules.write_text("invoice:\n  prefix: WEB-\n", encoding="utf-8")
    cli = CliRunner()
    done = cli.invoke(o2c, ["mapping", "import", str(merchant_id), str(rules), "--author", "ann@example.com"])
    assert done.exit_code == 0 and "as version 1" in done.output, done.output
    rules.write_text("invoice:\n  prefix: SHOP-\n", encoding="utf-8")
    assert cli.invoke(o2c, ["mapping", "import", str(merchant_id), str(rules)]).exit_code == 0
    saved = audit(console, "rules.saved")
    assert [(e.actor, e.detail["version"], e.detail["via"]) for e in saved] == [
        ("ann@example.com", 1, "cli"), (getpass.getuser(), 2, "cli")]
    with console.hub.session() as s:
        assert [(v.author, v.source) for v in versions(s, merchant_id)] == [(getpass.getuser(), "cli"),
                                                                            ("ann@example.com", "cli")]
    diff = html(console.client().get(f"/console/mapping/{merchant_id}/versions/2"))
    assert "<del>-  prefix: WEB-</del>" in diff and "<ins>+  prefix: SHOP-</ins>" in diff
    assert "with o2c mapping import" in diff


def test_audit_log_reads_in_sentences_filters_links_and_pages(console: Console, shop_factory) -> None:  # noqa: ANN001
    from datetime import datetime

    from hub import audit as audit_log
    from hub.models import SyncRun

    hub, merchant_id = console.hub, console.shop.merchant_id
    other = shop_factory(hub).merchant_id
    with hub.session() as s:
        run = SyncRun(merchant_id=merchant_id, kind="order", source_platform="shopify", source_id="450777",
                      source_name="#1777", status="failed", attempts=1, reason="mapping: x", error_kind="mapping")
        s.add(run)
        s.flush()
        audit_log.record(s, SUPPORT, "run.rerun", target_type="run", target_id=run.id, merchant_id=merchant_id,
                         detail={"runs": [run.id], "requeued": 1})
        audit_log.record(s, "ann@example.com", "rules.saved", target_type="mapping_rules", target_id=other,
                         merchant_id=other, detail={"version": 4, "via": "cli"})
        for n in range(55):
            audit_log.record(s, "cli", "token.created", target_type="api_token", target_id=n, detail={"name": f"t{n}"})
        old = audit_log.record(s, "ann@example.com", "user.disabled", target_type="user", target_id=1,
                               detail={"email": "gone@example.com"})
        s.flush()
        old.at = datetime(2026, 1, 15, 12, 0)
        run_id = run.id
    client = console.client()

    page = html(client.get(f"/console/audit?merchant={merchant_id}"))
    assert "Re-ran a sync run" in page and "Created the API token" not in page
    assert f'<a href="/console/runs/{run_id}">run {run_id}</a>' in page
    assert f'href="/console/orders/{merchant_id}/shopify/450777">order #1777</a>' in page
    page = html(client.get("/console/audit?actor=ANN@example.com&action=rules.saved"))
    assert "Saved version 4 of the mapping rules" in page and 'data-action="user.disabled"' not in page
    assert f'href="/console/mapping/{other}/versions/4">version 4</a>' in page
    assert "Disabled the user gone@example.com" in html(client.get("/console/audit?from=2026-01-01&to=2026-01-31"))
    assert "Disabled the user" not in html(client.get("/console/audit?from=2026-02-01"))
    assert client.get("/console/audit?from=yesterday").status_code == 400
    assert client.get("/console/audit?action=drop.table").status_code == 400

    first = html(client.get("/console/audit?action=token.created"))
    assert first.count('data-action="token.created"') == 50
    older = html_lib.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    assert "action=token.created" in older
    second = html(client.get(older))
    assert second.count('data-action="token.created"') == 5 and 'rel="next"' not in second
    assert "Created the API token t0" in second and "Created the API token t54" in first
