"""The QuickBooks Online simulator, driven over real HTTP through python-quickbooks and intuit-oauth."""

from __future__ import annotations

import copy
import json
import threading
from decimal import Decimal

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.exceptions import AuthorizationException, QuickbooksException, ValidationException
from quickbooks.objects.base import EmailAddress, LinkedTxn, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from requests_oauthlib import OAuth2Session

from demo.simulators.quickbooks import QuickBooksSimulator

REALM = "9130350000000001"


@pytest.fixture(scope="module")
def server():
    with QuickBooksSimulator() as s:
        yield s


@pytest.fixture
def sim(server):
    server.reset()
    server.add_company(REALM)
    return server


@pytest.fixture
def token(sim):
    return sim.issue_token(REALM)


@pytest.fixture
def qb(sim, token, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client = QuickBooks(company_id=REALM, minorversion=75)
    client.api_url_v3 = sim.url + "/v3"
    client.session = OAuth2Session("client", token={"access_token": token, "token_type": "Bearer"})
    return client


def api(sim, token, method, path, *, realm=REALM, **kwargs):
    """A raw call to the Accounting API; returns (status, json)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    headers.update(kwargs.pop("headers", {}))
    params = {"minorversion": "75", **kwargs.pop("params", {})}
    r = requests.request(method, f"{sim.url}/v3/company/{realm}/{path}", headers=headers,
                         params=params, timeout=5, **kwargs)
    return r.status_code, (r.json() if r.headers.get("Content-Type", "").startswith("application/json")
                           else r.text)


def fault(body):
    return body["Fault"]["Error"][0]


def ref(value):
    r = Ref()
    r.value = value
    return r


def make_customer(qb, name="Amy's Bird Sanctuary", email=None):
    c = Customer()
    c.DisplayName = name
    if email:
        c.PrimaryEmailAddr = EmailAddress()
        c.PrimaryEmailAddr.Address = email
    return c.save(qb=qb)


def sales_line(item_id, qty, price, amount=None):
    line = SalesItemLine()
    line.Amount = amount if amount is not None else qty * price
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = ref(item_id)
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    return line


def item_id(sim, name="Sales"):
    return next(i["Id"] for i in sim.objects(REALM, "Item") if i["Name"] == name)


def make_invoice(qb, sim, customer_id, *lines, doc=None):
    inv = Invoice()
    inv.CustomerRef = ref(customer_id)
    inv.Line = list(lines) or [sales_line(item_id(sim), 2, 5)]
    if doc:
        inv.DocNumber = doc
    return inv


# -- company, seeds, preferences ----------------------------------------------------------------
def test_seeded_company_and_preferences(sim, token):
    accounts = {a["Name"]: a for a in sim.objects(REALM, "Account")}
    assert set(accounts) == {"Sales of Product Income", "Services", "Shipping Income",
                             "Undeposited Funds", "Checking", "Discounts given"}
    assert accounts["Checking"]["AccountType"] == "Bank"
    items = {i["Name"]: i for i in sim.objects(REALM, "Item")}
    assert items["Services"]["Type"] == "Service" and items["Sales"]["Type"] == "NonInventory"
    assert items["Sales"]["IncomeAccountRef"]["value"] == accounts["Sales of Product Income"]["Id"]
    status, body = api(sim, token, "GET", "preferences")
    assert status == 200
    prefs = body["Preferences"]
    assert prefs["TaxPrefs"]["PartnerTaxEnabled"] is True
    assert prefs["CurrencyPrefs"]["MultiCurrencyEnabled"] is False
    assert "SalesFormsPrefs" in prefs and "time" in body
    status, body = api(sim, token, "GET", f"companyinfo/{REALM}")
    assert status == 200 and body["CompanyInfo"]["Country"] == "US"


# -- auth ------------------------------------------------------------------------------------------
def test_unknown_expired_or_foreign_token_is_401(sim, token, qb):
    sim.add_company("2")
    other = sim.issue_token("2")
    assert api(sim, "nope", "GET", "preferences")[0] == 401
    status, body = api(sim, other, "GET", "preferences")
    assert status == 401 and fault(body)["code"] == "3200"
    assert "AuthenticationFailed" in fault(body)["Message"]
    unknown = sim.issue_token("404")
    assert api(sim, unknown, "GET", "preferences", realm="404")[0] == 403
    make_customer(qb)
    sim.expire_tokens()
    with pytest.raises(AuthorizationException):
        make_customer(qb, "Someone Else")


# -- entities through the SDK ---------------------------------------------------------------------
def test_customer_item_invoice_payment_through_the_sdk(sim, qb):
    customer = make_customer(qb, email="amy@example.com")
    assert customer.Id and customer.SyncToken == "0"
    item = Item()
    item.Name = "Widget"
    item.Type = "NonInventory"
    item.IncomeAccountRef = ref(sim.objects(REALM, "Account")[0]["Id"])
    item.UnitPrice = 4.5
    item = item.save(qb=qb)
    inv = make_invoice(qb, sim, customer.Id, sales_line(item.Id, 3, 4.5), sales_line(item_id(sim), 1, 10))
    inv = inv.save(qb=qb)
    stored = sim.get_object(REALM, "Invoice", inv.Id)
    assert stored["TotalAmt"] == Decimal("23.50") and stored["Balance"] == Decimal("23.50")
    assert stored["DocNumber"] == "1001"
    assert stored["Line"][-1]["DetailType"] == "SubTotalLineDetail"

    pay = Payment()
    pay.CustomerRef = ref(customer.Id)
    pay.TotalAmt = 20
    line = PaymentLine()
    line.Amount = 20
    link = LinkedTxn()
    link.TxnId, link.TxnType = inv.Id, "Invoice"
    line.LinkedTxn = [link]
    pay.Line = [line]
    pay = pay.save(qb=qb)
    assert sim.get_object(REALM, "Invoice", inv.Id)["Balance"] == Decimal("3.50")
    # a create changes only what it touches; going over the whole company again changes nothing more
    company = sim.companies[REALM]
    before = {kind: copy.deepcopy(company.objects[kind]) for kind in ("Invoice", "Customer")}
    assert sim.get_object(REALM, "Customer", customer.Id)["Balance"] == Decimal("3.50")
    with sim.lock:
        sim._touched = []
        sim._recompute(company)
        assert sim._touched == []
    assert {kind: company.objects[kind] for kind in ("Invoice", "Customer")} == before

    too_much = Payment()
    too_much.CustomerRef = ref(customer.Id)
    too_much.TotalAmt = 5
    line2 = PaymentLine()
    line2.Amount = 5
    line2.LinkedTxn = [link]
    too_much.Line = [line2]
    with pytest.raises(QuickbooksException) as exc:
        too_much.save(qb=qb)
    assert exc.value.error_code == 6000 and "open balance" in exc.value.detail

    # a read gives JSON numbers with two decimals
    raw = requests.get(f"{sim.url}/v3/company/{REALM}/invoice/{inv.Id}",
                       headers={"Authorization": qb.session.access_token and
                                f"Bearer {qb.session.access_token}"}, timeout=5).text
    assert '"TotalAmt": 23.50' in raw and '"Balance": 3.50' in raw

    # voiding the payment reopens the invoice
    Payment.get(pay.Id, qb=qb).void(qb=qb)
    assert sim.get_object(REALM, "Invoice", inv.Id)["Balance"] == Decimal("23.50")


def test_update_needs_current_synctoken_and_sparse_merges(sim, qb, token):
    customer = make_customer(qb)
    status, body = api(sim, token, "POST", "customer", json={
        "Id": customer.Id, "SyncToken": "0", "sparse": True, "Notes": "vip"})
    assert status == 200 and body["Customer"]["SyncToken"] == "1"
    assert body["Customer"]["DisplayName"] == customer.DisplayName and body["Customer"]["Notes"] == "vip"
    status, body = api(sim, token, "POST", "customer", json={
        "Id": customer.Id, "SyncToken": "0", "sparse": True, "Notes": "late"})
    assert status == 400 and fault(body)["code"] == "5010"


def test_customer_name_rules(sim, qb, token):
    make_customer(qb, "Dup Co")
    with pytest.raises(QuickbooksException) as exc:
        make_customer(qb, "dup co")
    assert exc.value.error_code == 6240
    status, body = api(sim, token, "POST", "customer", json={"GivenName": "Ada", "FamilyName": "Lovelace"})
    assert status == 200 and body["Customer"]["DisplayName"] == "Ada Lovelace"
    status, body = api(sim, token, "POST", "customer", json={"Notes": "no name"})
    assert status == 400 and fault(body)["code"] == "6080"


def test_item_needs_unique_name_and_income_account(sim, token):
    status, body = api(sim, token, "POST", "item", json={"Name": "Sales", "Type": "Service",
                                                         "IncomeAccountRef": {"value": "1"}})
    assert status == 400 and fault(body)["code"] == "6240"
    status, body = api(sim, token, "POST", "item", json={"Name": "Gadget", "Type": "Service"})
    assert status == 400 and fault(body)["code"] == "2020"
    status, body = api(sim, token, "POST", "item", json={"Name": "Gadget", "Type": "Service",
                                                         "IncomeAccountRef": {"value": "999"}})
    assert status == 400 and fault(body)["code"] == "2500"


def test_invoice_validation(sim, qb, token):
    customer = make_customer(qb)
    make_invoice(qb, sim, customer.Id, doc="A-1").save(qb=qb)
    with pytest.raises(QuickbooksException) as exc:
        make_invoice(qb, sim, customer.Id, doc="A-1").save(qb=qb)
    assert exc.value.error_code == 6140 and "Duplicate Document Number" in exc.value.message
    dup = make_invoice(qb, sim, customer.Id, doc="A-1").save(qb=qb, params={"include": "allowduplicatedocnum"})
    assert dup.DocNumber == "A-1"
    with pytest.raises(ValidationException) as exc:
        make_invoice(qb, sim, customer.Id, doc="X" * 22).save(qb=qb)
    assert exc.value.error_code == 2050
    with pytest.raises(QuickbooksException) as exc:
        make_invoice(qb, sim, customer.Id, sales_line(item_id(sim), 3, 3.33, amount=10)).save(qb=qb)
    assert exc.value.error_code == 6070 and "UnitPrice * Qty" in exc.value.detail
    with pytest.raises(ValidationException) as exc:
        make_invoice(qb, sim, "999").save(qb=qb)
    assert exc.value.error_code == 2500
    status, body = api(sim, token, "POST", "invoice", json={"CustomerRef": {"value": customer.Id}, "Line": []})
    assert status == 400 and fault(body)["code"] == "2020"
    status, body = api(sim, token, "POST", "invoice", json={
        "CustomerRef": {"value": customer.Id}, "CurrencyRef": {"value": "EUR"},
        "Line": [{"Amount": 1, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item_id(sim)}}}]})
    assert status == 400 and "Multicurrency" in fault(body)["Detail"]


def test_invoice_totals_discount_and_tax(sim, qb, token):
    customer = make_customer(qb)
    line = {"Amount": "33.30", "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item_id(sim)}, "Qty": 3, "UnitPrice": 11.1}}
    discount = {"DetailType": "DiscountLineDetail",
                "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}}
    status, body = api(sim, token, "POST", "invoice", data=json.dumps({
        "CustomerRef": {"value": customer.Id}, "Line": [line, discount],
        "TxnTaxDetail": {"TotalTax": 2.5}}), headers={"Content-Type": "application/json"})
    assert status == 200, body
    assert body["Invoice"]["TotalAmt"] == 32.47   # 33.30 - 3.33 + 2.50
    status, body = api(sim, token, "POST", "invoice", json={
        "CustomerRef": {"value": customer.Id}, "GlobalTaxCalculation": "TaxInclusive",
        "Line": [line, {"Amount": 3.3, "DetailType": "DiscountLineDetail", "DiscountLineDetail": {}}],
        "TxnTaxDetail": {"TotalTax": 2.5}})
    assert status == 200 and body["Invoice"]["TotalAmt"] == 30.0


def test_delete_and_void_invoice(sim, qb):
    customer = make_customer(qb)
    inv = make_invoice(qb, sim, customer.Id).save(qb=qb)
    inv = Invoice.get(inv.Id, qb=qb)
    inv.void(qb=qb)
    voided = sim.get_object(REALM, "Invoice", inv.Id)
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    inv = Invoice.get(inv.Id, qb=qb)
    inv.delete(qb=qb)
    assert sim.get_object(REALM, "Invoice", inv.Id) is None


# -- idempotency -----------------------------------------------------------------------------------
def test_requestid_replays_the_original_response_after_a_lost_one(sim, qb):
    customer = make_customer(qb)
    sim.drop_response_next(path_contains="invoice")
    with pytest.raises(QuickbooksException):    # a 502 that is not JSON
        make_invoice(qb, sim, customer.Id, doc="R-1").save(qb=qb, request_id="req-1")
    assert len(sim.objects(REALM, "Invoice")) == 1
    again = make_invoice(qb, sim, customer.Id, doc="R-1").save(qb=qb, request_id="req-1")
    assert again.Id == sim.objects(REALM, "Invoice")[0]["Id"]
    assert len(sim.objects(REALM, "Invoice")) == 1
    with pytest.raises(ValidationException):
        make_invoice(qb, sim, customer.Id).save(qb=qb, request_id="x" * 51)


# -- query -----------------------------------------------------------------------------------------
def test_query_language(sim, qb, token):
    make_customer(qb, "O'Brien Ltd", email="ob@example.com")
    make_customer(qb, "Zeta Corp", email="z@example.com")
    make_customer(qb, "Alpha Inc")
    found = Customer.filter(DisplayName="O'Brien Ltd", qb=qb)
    assert [c.DisplayName for c in found] == ["O'Brien Ltd"]
    found = Customer.where("PrimaryEmailAddr = 'z@example.com'", qb=qb)
    assert [c.DisplayName for c in found] == ["Zeta Corp"]
    names = [c.DisplayName for c in Customer.where("DisplayName LIKE '%r%'", order_by="DisplayName DESC",
                                                   qb=qb)]
    assert names == ["Zeta Corp", "O'Brien Ltd"]
    assert Customer.count("DisplayName IN ('Alpha Inc', 'Zeta Corp')", qb=qb) == 2
    page = qb.query("SELECT * FROM Customer ORDERBY DisplayName STARTPOSITION 2 MAXRESULTS 1")
    assert page["QueryResponse"]["Customer"][0]["DisplayName"] == "O'Brien Ltd"
    assert page["QueryResponse"]["startPosition"] == 2 and page["QueryResponse"]["maxResults"] == 1
    recent = qb.query("select * from Customer where MetaData.LastUpdatedTime >= '2020-01-01T00:00:00Z'")
    assert len(recent["QueryResponse"]["Customer"]) == 3
    assert qb.query("SELECT * FROM Customer WHERE DisplayName = 'nobody'")["QueryResponse"] == {}
    assert len(Item.all(qb=qb)) == 2                     # "SELECT *, Sku FROM Item ORDER BY ..."
    with pytest.raises(ValidationException) as exc:
        qb.query("SELECT * FROM Customer WHERE DisplayName = 'a' OR DisplayName = 'b'")
    assert exc.value.error_code == 4000 and "OR" in exc.value.detail
    with pytest.raises(ValidationException):
        qb.query("SELECT * FROM Customer MAXRESULTS 1001")
    with pytest.raises(ValidationException):
        qb.query("SELECT * FROM Customer WHERE DisplayName = 'unterminated")
    status, body = api(sim, token, "GET", "query", params={"query": "SELECT COUNT(*) FROM Account"})
    assert status == 200 and body["QueryResponse"]["totalCount"] == 6


# -- batch -----------------------------------------------------------------------------------------
def test_batch_with_a_failing_item(sim, qb, token):
    customer = make_customer(qb)
    good = make_invoice(qb, sim, customer.Id, doc="B-1")
    bad = make_invoice(qb, sim, customer.Id, sales_line(item_id(sim), 2, 5, amount=11), doc="B-2")
    result = batch_create([good, bad], qb=qb)
    assert len(result.successes) == 1 and len(result.faults) == 1
    assert result.faults[0].Error[0].code == "6070"
    status, body = api(sim, token, "POST", "batch", json={"BatchItemRequest": [
        {"bId": "q", "Query": "SELECT * FROM Invoice"}]})
    assert status == 200 and len(body["BatchItemResponse"][0]["QueryResponse"]["Invoice"]) == 1
    status, body = api(sim, token, "POST", "batch", json={"BatchItemRequest": [
        {"bId": str(i), "Query": "SELECT * FROM Item"} for i in range(31)]})
    assert status == 400 and "Fault" in body


# -- CDC -------------------------------------------------------------------------------------------
def test_change_data_capture(sim, qb):
    customer = make_customer(qb)
    inv = make_invoice(qb, sim, customer.Id).save(qb=qb)
    with pytest.raises(ValidationException) as exc:      # at most 30 days back
        qb.change_data_capture("Invoice,Payment", "2020-01-01T00:00:00-08:00")
    assert "30 days" in exc.value.detail
    result = qb.get(f"{qb.api_url}/company/{REALM}/cdc",
                    params={"entities": "Invoice,Payment", "changedSince": sim.get_object(
                        REALM, "Invoice", inv.Id)["MetaData"]["CreateTime"]})
    blocks = result["CDCResponse"][0]["QueryResponse"]
    assert blocks[0]["Invoice"][0]["Id"] == inv.Id and blocks[1] == {}


# -- throttling ------------------------------------------------------------------------------------
def test_rate_limit_429_with_retry_after(sim, token):
    sim.requests_per_minute = 3
    statuses = [api(sim, token, "GET", "preferences")[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = requests.get(f"{sim.url}/v3/company/{REALM}/preferences",
                     headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["Fault"]["Error"][0]["code"] == "3001"


def test_concurrency_limit(sim, token):
    sim.latency = 0.3
    sim.max_concurrent = 2
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        api(sim, token, "GET", "preferences")[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 200, 429, 429]


# -- OAuth -----------------------------------------------------------------------------------------
def test_oauth_code_exchange_and_refresh_rotation(sim):
    sim.register_app("cid", "secret")
    client = AuthClient("cid", "secret", "http://localhost/callback",
                        environment=sim.url + "/.well-known/openid_configuration")
    assert client.token_endpoint.startswith(sim.url)
    client.get_bearer_token(sim.issue_auth_code(REALM), realm_id=REALM)
    assert client.expires_in == 3600 and client.access_token
    first = client.refresh_token
    client.refresh()
    second = client.refresh_token
    assert second != first and sim.refresh_count == 1
    client.refresh(refresh_token=first)         # old one still works until the new one is used
    assert client.refresh_token == second
    client.refresh(refresh_token=second)
    with pytest.raises(AuthClientError) as exc:
        client.refresh(refresh_token=first)
    assert exc.value.status_code == 400 and "invalid_grant" in exc.value.content.decode()
    assert api(sim, client.access_token, "GET", "preferences")[0] == 200
    client.revoke()
    assert api(sim, client.access_token, "GET", "preferences")[0] == 401
    bad = AuthClient("cid", "wrong", "http://localhost/callback",
                     environment=sim.url + "/.well-known/openid_configuration")
    with pytest.raises(AuthClientError):
        bad.refresh(refresh_token=sim.issue_refresh_token(REALM))


def test_full_update_round_trip_through_the_sdk(sim, qb):
    customer = make_customer(qb)
    inv = Invoice.get(make_invoice(qb, sim, customer.Id).save(qb=qb).Id, qb=qb)
    inv.Line[0].SalesItemLineDetail.Qty = 3
    inv.Line[0].Amount = 15
    saved = inv.save(qb=qb)
    stored = sim.get_object(REALM, "Invoice", saved.Id)
    assert stored["SyncToken"] == "1" and stored["TotalAmt"] == Decimal("15.00")
    assert [ln["DetailType"] for ln in stored["Line"]] == ["SalesItemLineDetail", "SubTotalLineDetail"]
    c = Customer.get(customer.Id, qb=qb)
    c.CompanyName = "Birds Inc"
    assert c.save(qb=qb).SyncToken == "1"


def test_batch_rate_limit(sim, token):
    sim.batch_requests_per_minute = 1
    body = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Item"}]}
    assert api(sim, token, "POST", "batch", json=body)[0] == 200
    status, fault_body = api(sim, token, "POST", "batch", json=body)
    assert status == 429 and fault(fault_body)["code"] == "3001"
    assert api(sim, token, "GET", "preferences")[0] == 200


# -- tax outside the US ------------------------------------------------------------------------------
GB = "9130350000000044"


@pytest.fixture
def gb(sim):
    sim.add_company(GB, country="GB", currency="GBP", automated_sales_tax=False)
    return sim.issue_token(GB)


def tax_code(sim, token, name, realm=GB):
    query = "select * from TaxCode where Name = '" + name.replace("'", "\\'") + "'"
    status, body = api(sim, token, "GET", "query", realm=realm, params={"query": query})
    assert status == 200, body
    return body["QueryResponse"]["TaxCode"][0]


def gb_line(sim, amount, code_id, qty=1):
    detail = {"ItemRef": {"value": next(i["Id"] for i in sim.objects(GB, "Item") if i["Name"] == "Sales")},
              "Qty": qty, "UnitPrice": str(Decimal(amount) / qty)}
    if code_id is not None:
        detail["TaxCodeRef"] = {"value": code_id}
    return {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}


def gb_customer(sim, token, name="Brighton Books"):
    return api(sim, token, "POST", "customer", realm=GB, json={"DisplayName": name})[1]["Customer"]["Id"]


def test_gb_company_tax_codes_computed_and_overridden(sim, gb):
    status, body = api(sim, gb, "GET", "preferences", realm=GB)
    assert body["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is False
    assert body["Preferences"]["CurrencyPrefs"]["HomeCurrency"]["value"] == "GBP"
    assert api(sim, gb, "GET", f"companyinfo/{GB}", realm=GB)[1]["CompanyInfo"]["Country"] == "GB"
    names = {c["Name"] for c in sim.objects(GB, "TaxCode")}
    assert {"20.0% S", "5.0% R", "0.0% Z", "Exempt"} <= names
    standard, reduced = tax_code(sim, gb, "20.0% S"), tax_code(sim, gb, "5.0% R")
    rate_id = standard["SalesTaxRateList"]["TaxRateDetail"][0]["TaxRateRef"]["value"]
    status, body = api(sim, gb, "GET", f"taxrate/{rate_id}", realm=GB)
    assert status == 200 and body["TaxRate"]["RateValue"] == 20
    customer = gb_customer(sim, gb)

    # 10.05 at 20 % = 2.01; 3.30 at 5 % = 0.165 -> 0.17 (half-up, per line)
    lines = [gb_line(sim, "10.05", standard["Id"]), gb_line(sim, "3.30", reduced["Id"], qty=2)]
    status, body = api(sim, gb, "POST", "invoice", realm=GB, json={"CustomerRef": {"value": customer},
                                                                    "Line": lines})
    assert status == 200, body
    inv = body["Invoice"]
    assert inv["TxnTaxDetail"]["TotalTax"] == 2.18 and inv["TotalAmt"] == 15.53
    tax_lines = {t["TaxLineDetail"]["TaxPercent"]: t for t in inv["TxnTaxDetail"]["TaxLine"]}
    assert tax_lines[20]["Amount"] == 2.01 and tax_lines[20]["TaxLineDetail"]["NetAmountTaxable"] == 10.05
    assert tax_lines[5]["Amount"] == 0.17 and tax_lines[5]["TaxLineDetail"]["PercentBased"] is True
    assert tax_lines[20]["TaxLineDetail"]["TaxRateRef"]["value"] == rate_id

    # an explicit TotalTax wins (QuickBooks lets the user adjust the computed VAT)
    status, body = api(sim, gb, "POST", "invoice", realm=GB, json={
        "CustomerRef": {"value": customer}, "Line": lines, "TxnTaxDetail": {"TotalTax": "2.20"}})
    assert body["Invoice"]["TxnTaxDetail"]["TotalTax"] == 2.20 and body["Invoice"]["TotalAmt"] == 15.55
    assert sum(Decimal(str(t["Amount"])) for t in body["Invoice"]["TxnTaxDetail"]["TaxLine"]) == Decimal("2.20")

    # amounts including VAT: 12.00 at 20 % holds 2.00 of tax
    status, body = api(sim, gb, "POST", "invoice", realm=GB, json={
        "CustomerRef": {"value": customer}, "GlobalTaxCalculation": "TaxInclusive",
        "Line": [gb_line(sim, "12.00", standard["Id"])]})
    assert body["Invoice"]["TotalAmt"] == 12.0 and body["Invoice"]["TxnTaxDetail"]["TotalTax"] == 2.0
    assert body["Invoice"]["TxnTaxDetail"]["TaxLine"][0]["TaxLineDetail"]["NetAmountTaxable"] == 10.0

    # a code added by the bookkeeper, found by the query language
    added = sim.add_tax_code(GB, "12.5% Hospitality", "12.5")
    assert tax_code(sim, gb, "12.5% Hospitality")["Id"] == added["Id"]
    status, body = api(sim, gb, "POST", "salesreceipt", realm=GB, json={
        "Line": [gb_line(sim, "8.00", added["Id"])]})
    assert status == 200 and body["SalesReceipt"]["TxnTaxDetail"]["TotalTax"] == 1.0


def test_gb_company_refuses_missing_unknown_and_us_tax_codes(sim, gb, token):
    customer = gb_customer(sim, gb)
    inactive = sim.add_tax_code(GB, "Old rate", 17.5, active=False)

    def invoice(code_id):
        return api(sim, gb, "POST", "invoice", realm=GB, json={
            "CustomerRef": {"value": customer}, "Line": [gb_line(sim, "10.00", code_id)]})

    status, body = invoice(None)
    assert status == 400 and fault(body)["code"] == "6000" and "VAT rate" in fault(body)["Detail"]
    for bad in ("999", inactive["Id"]):
        status, body = invoice(bad)
        assert status == 400 and fault(body)["code"] == "2500" and bad in fault(body)["Detail"]
    status, body = invoice("TAX")
    assert status == 400 and fault(body)["code"] == "2500" and "US companies" in fault(body)["Detail"]
    status, body = api(sim, gb, "POST", "taxcode", realm=GB, json={"Name": "Mine"})
    assert status == 400 and "not supported" in fault(body)["Detail"]
    # a US company keeps TAX/NON and a plain TotalTax
    us_customer = api(sim, token, "POST", "customer", json={"DisplayName": "Yankee Co"})[1]["Customer"]["Id"]
    status, body = api(sim, token, "POST", "invoice", json={
        "CustomerRef": {"value": us_customer}, "TxnTaxDetail": {"TotalTax": "0.80"},
        "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {
            "ItemRef": {"value": item_id(sim)}, "TaxCodeRef": {"value": "TAX"}}}]})
    assert status == 200 and body["Invoice"]["TotalAmt"] == 10.8


# -- multi-currency ----------------------------------------------------------------------------------
MC = "9130350000000077"


@pytest.fixture
def mc(sim):
    sim.add_company(MC, multi_currency=True)
    return sim.issue_token(MC)


def test_multi_currency_invoice_and_payment(sim, mc):
    prefs = api(sim, mc, "GET", "preferences", realm=MC)[1]["Preferences"]["CurrencyPrefs"]
    assert prefs == {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": "USD"}}
    status, body = api(sim, mc, "POST", "customer", realm=MC, json={"DisplayName": "Berlin GmbH",
                                                                    "CurrencyRef": {"value": "EUR"}})
    assert status == 200 and body["Customer"]["CurrencyRef"]["value"] == "EUR"
    euro = body["Customer"]
    home = api(sim, mc, "POST", "customer", realm=MC, json={"DisplayName": "Boston Inc"})[1]["Customer"]
    assert home["CurrencyRef"]["value"] == "USD"
    found = api(sim, mc, "GET", "query", realm=MC, params={
        "query": "select * from Customer where DisplayName = 'Berlin GmbH'"})[1]["QueryResponse"]["Customer"]
    assert [c["Id"] for c in found] == [euro["Id"]]
    line = {"Amount": "33.33", "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {
        "ItemRef": {"value": next(i["Id"] for i in sim.objects(MC, "Item") if i["Name"] == "Sales")}}}

    status, body = api(sim, mc, "POST", "invoice", realm=MC, json={
        "CustomerRef": {"value": euro["Id"]}, "CurrencyRef": {"value": "EUR"}, "ExchangeRate": "1.0825",
        "Line": [line]})
    assert status == 200, body
    inv = body["Invoice"]
    assert inv["ExchangeRate"] == 1.0825 and inv["HomeTotalAmt"] == 36.08      # 33.33 x 1.0825 = 36.080
    # no ExchangeRate: the company's table, else a fault
    status, body = api(sim, mc, "POST", "invoice", realm=MC, json={
        "CustomerRef": {"value": euro["Id"]}, "CurrencyRef": {"value": "EUR"}, "Line": [line]})
    assert status == 400 and "exchange rate" in fault(body)["Detail"]
    sim.set_exchange_rate(MC, "EUR", "1.10")
    status, body = api(sim, mc, "POST", "invoice", realm=MC, json={
        "CustomerRef": {"value": euro["Id"]}, "CurrencyRef": {"value": "EUR"}, "Line": [line]})
    assert status == 200 and body["Invoice"]["HomeTotalAmt"] == 36.66

    # the transaction's currency must be the customer's
    for customer, currency in ((euro["Id"], "USD"), (home["Id"], "EUR")):
        status, body = api(sim, mc, "POST", "invoice", realm=MC, json={
            "CustomerRef": {"value": customer}, "CurrencyRef": {"value": currency}, "ExchangeRate": 1.1,
            "Line": [line]})
        assert status == 400 and fault(body)["code"] == "6000"
        assert "different from the customer's currency" in fault(body)["Detail"]
    status, body = api(sim, mc, "POST", "customer", realm=MC, json={
        "Id": euro["Id"], "SyncToken": euro["SyncToken"], "sparse": True, "CurrencyRef": {"value": "GBP"}})
    assert status == 400 and "cannot be changed" in fault(body)["Detail"]

    payment = sim.record_payment(MC, euro["Id"], "33.33", {inv["Id"]: "33.33"}, exchange_rate="1.09")
    assert payment["CurrencyRef"]["value"] == "EUR" and payment["HomeTotalAmt"] == Decimal("36.33")
    assert sim.get_object(MC, "Invoice", inv["Id"])["Balance"] == 0
