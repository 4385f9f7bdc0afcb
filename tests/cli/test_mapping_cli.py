"""Merchant mapping rules through the operator's commands: export, import (validated, checked against the
QuickBooks company), their effect on the next sync, and the preview that sends nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import requests
import yaml
from click.testing import CliRunner

from cli.main import main as o2c
from tests.helpers import an_order, settled, webhook


def _qb_create(p, shop, entity: str, body: dict) -> dict:  # noqa: ANN001
    """Something the merchant's bookkeeper set up in QuickBooks beforehand."""
    token = p.quickbooks.issue_token(shop.realm)
    r = requests.post(f"{p.quickbooks.url}/v3/company/{shop.realm}/{entity.lower()}?minorversion=75", json=body,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()[entity]


def test_export_import_round_trip_and_validation(shop, tmp_path: Path) -> None:  # noqa: ANN001
    cli = CliRunner()
    exported = cli.invoke(o2c, ["mapping", "export", str(shop.merchant_id)])
    assert exported.exit_code == 0, exported.output
    rules = yaml.safe_load(exported.output)
    assert rules["items"]["when_missing"] == "create" and rules["tax"]["mode"] == "total_tax"

    rules["invoice"]["prefix"] = "WEB-"
    rules["hubspot"]["lifecycle_stage"] = "opportunity"
    good = tmp_path / "rules.yaml"
    good.write_text(yaml.safe_dump(rules), encoding="utf-8")
    imported = cli.invoke(o2c, ["mapping", "import", str(shop.merchant_id), str(good)])
    assert imported.exit_code == 0, imported.output
    again = yaml.safe_load(cli.invoke(o2c, ["mapping", "export", str(shop.merchant_id)]).output)
    assert again["invoice"]["prefix"] == "WEB-" and again["hubspot"]["lifecycle_stage"] == "opportunity"

    bad = tmp_path / "bad.yaml"
    for text, field in (("items:\n  when_missing: sometimes\n", "items.when_missing"),
                        ("invoice:\n  prefix: 'A-VERY-LONG-PREFIX-'\n", "invoice.prefix"),
                        ("colours: {}\n", "colours"), ("items: [\n", "(yaml)")):
        bad.write_text(text, encoding="utf-8")
        refused = cli.invoke(o2c, ["mapping", "import", str(shop.merchant_id), str(bad)])
        assert refused.exit_code == 1 and field in refused.output, (text, refused.output)
    kept = yaml.safe_load(cli.invoke(o2c, ["mapping", "export", str(shop.merchant_id)]).output)
    assert kept == again   # nothing of a refused file was saved

    missing = tmp_path / "missing.yaml"
    missing.write_text("items:\n  map:\n    TEE-BLK-M: Shirts sold\n"
                       "payments:\n  deposit_accounts:\n    shopify_payments: Stripe clearing\n", encoding="utf-8")
    refused = cli.invoke(o2c, ["mapping", "import", str(shop.merchant_id), str(missing)])
    assert refused.exit_code == 1
    assert "no Item named 'Shirts sold'" in refused.output and "Stripe clearing" in refused.output
    assert cli.invoke(o2c, ["mapping", "import", str(shop.merchant_id), str(missing), "--no-check"]).exit_code == 0


def test_rules_shape_the_next_invoice(hub, shop, client, runner, platforms, tmp_path: Path) -> None:  # noqa: ANN001
    income = next(a for a in platforms.quickbooks.objects(shop.realm, "Account") if a["AccountType"] == "Income")
    shirts = _qb_create(platforms, shop, "Item", {"Name": "Shirts sold", "Type": "Service",
                                                  "IncomeAccountRef": {"value": income["Id"]}})
    rules = tmp_path / "rules.yaml"
    rules.write_text("items:\n  map:\n    TEE-BLK-M: Shirts sold\ninvoice:\n  prefix: 'WEB-'\n", encoding="utf-8")
    result = runner.invoke(["mapping", "import", str(shop.merchant_id), str(rules)])
    assert result.exit_code == 0, result.output

    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["DocNumber"] == "WEB-1001"
    tee_line = next(ln for ln in invoice["Line"] if ln.get("Description") == "Black tee")
    assert tee_line["SalesItemLineDetail"]["ItemRef"]["value"] == shirts["Id"]
    assert not any(i.get("Sku") == "TEE-BLK-M" for i in platforms.quickbooks.objects(shop.realm, "Item"))


def test_preview_shows_the_payloads_and_sends_nothing(hub, shop, client, platforms) -> None:  # noqa: ANN001
    order = an_order(450_777, 1777)
    platforms.shopify.add_order(shop.domain, order)
    before = {e: len(platforms.quickbooks.objects(shop.realm, e)) for e in ("Customer", "Item", "Invoice")}

    shown = CliRunner().invoke(o2c, ["preview", str(shop.merchant_id), "#1777", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["error"] is None and data["order"]["name"] == "#1777"
    creates = {(r["platform"], r["entity"]) for r in data["requests"]}
    assert {("quickbooks", "Customer"), ("quickbooks", "Invoice"), ("quickbooks", "Payment"),
            ("hubspot", "contact")} <= creates
    invoice = next(r["payload"] for r in data["requests"] if r["entity"] == "Invoice")
    from mappings.quickbooks import invoice_total
    assert invoice_total(invoice) == order.total and invoice["DocNumber"] == "1777"
    assert any(path.endswith("Amount") and "quantity" in origin for path, origin in data["traces"].items())
    assert "hubspot.email" in data["traces"]

    text = CliRunner().invoke(o2c, ["preview", str(shop.merchant_id), str(order.order_id)])
    assert text.exit_code == 0 and "Would create quickbooks Invoice" in text.output
    assert "Where each amount comes from" in text.output

    after = {e: len(platforms.quickbooks.objects(shop.realm, e)) for e in ("Customer", "Item", "Invoice")}
    assert after == before and platforms.hubspot.contacts(shop.portal) == []
    from hub.models import CreateAttempt
    with hub.session() as s:   # nor does it note a create as asked for (a later sync would look it up)
        assert s.query(CreateAttempt).count() == 0
    missing = CliRunner().invoke(o2c, ["preview", str(shop.merchant_id), "#999999"])
    assert missing.exit_code == 1 and "no order #999999" in missing.output

    # once synced, the preview says there is nothing left to send for it
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    settled(hub)
    data = json.loads(CliRunner().invoke(o2c, ["preview", str(shop.merchant_id), "#1777", "--json"]).output)
    assert [r for r in data["requests"] if r["platform"] == "quickbooks"] == []
    assert Decimal(data["order"]["total"]) == order.total


def test_daily_check_reports_rules_pointing_at_missing_objects(hub, shop, platforms,  # noqa: ANN001
                                                               tmp_path: Path) -> None:
    from hub.models import MappingRuleSet
    from sync.rules_check import check_due_rules

    rules = tmp_path / "rules.yaml"
    rules.write_text("items:\n  fallback_item: Misc sales\n  when_missing: fallback\n", encoding="utf-8")
    saved = CliRunner().invoke(o2c, ["mapping", "import", str(shop.merchant_id), str(rules), "--no-check"])
    assert saved.exit_code == 0, saved.output
    assert check_due_rules(hub) == 1          # not checked yet: checked now
    with hub.session() as s:
        problems = s.get(MappingRuleSet, shop.merchant_id).problems
    assert problems["missing"] == ["items.fallback_item: QuickBooks has no Item named 'Misc sales'"]
    assert check_due_rules(hub) == 0          # once a day
