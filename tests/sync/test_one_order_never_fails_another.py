"""One order never fails another (``sync.narrowing``): a call that serves several orders and is refused for
good for one order's sake fails that order alone, the others succeed in the same pass; a call that fails for
a passing reason defers its orders without using up their attempts.

Against the simulated platforms over real HTTP: Shopify refuses a whole document when one ``ID`` variable is
not a global id (as Shopify does), QuickBooks may refuse a whole batch request for one malformed item, HubSpot
refuses a whole batch upsert for one invalid e-mail address.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select

from connectors.shopify_bulk_queries import BY_ID_MAX
from demo.simulators.quickbooks import QuickBooksSimulator
from demo.simulators.quickbooks_query import QBFault
from hub.models import Connection, SyncAttempt, SyncRun, SyncStep
from sync import runs
from sync.orders.runner import run_orders as run_batch
from sync.outcomes import max_deferrals
from tests.helpers import an_order, settled, webhook
from web.app import create_app

BAD_ID = "²"   # a superscript two: not an ASCII digit, so not a Shopify global id


def _plus_plan(platforms, shop) -> None:  # noqa: ANN001
    """A Shopify Plus shop: the same cost rules (1,000 points a query at most), a bucket restored at 1,000
    points/s, so a burst is pulled without waiting for a Standard shop's 100 points/s."""
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, currently_available=10_000,
                                   domain=shop.domain)


def _orders(platforms, shop, count: int, *, first_id: int = 600_001, first_number: int = 3001,  # noqa: ANN001
            emails: list[str] | None = None) -> list:
    """``count`` paid orders of a few buyers (``emails``, in turn; seven by default)."""
    emails = emails or [f"buyer{b}@example.com" for b in range(7)]
    made = []
    for n in range(count):
        b = n % len(emails)
        order = an_order(first_id + n, first_number + n, email=emails[b],
                         customer={"id": 890_000 + b, "first_name": f"Buyer{b}", "last_name": "Burst",
                                   "email": emails[b]})
        platforms.shopify.add_order(shop.domain, order)
        made.append(order)
    return made


def _open(hub, shop, source_ids: list[str]) -> list[int]:  # noqa: ANN001
    """Order runs of the shop's connection, as the receiver opens them."""
    ids = []
    with hub.session() as s:
        connection_id = s.scalar(select(Connection.id).where(Connection.merchant_id == shop.merchant_id,
                                                             Connection.platform == "shopify"))
        for source_id in source_ids:
            run, _ = runs.open_run(s, merchant_id=shop.merchant_id, kind="order", platform="shopify",
                                   source_id=source_id, source_name=None, trigger="test")
            run.connection_id = connection_id
            ids.append(run.id)
        s.commit()
    return ids


def _runs(hub, ids: list[int]) -> dict[int, SyncRun]:  # noqa: ANN001
    with hub.session() as s:
        return {r.id: r for r in s.scalars(select(SyncRun).where(SyncRun.id.in_(ids)))}


def _attempts(hub, run_id: int) -> list[SyncAttempt]:  # noqa: ANN001
    with hub.session() as s:
        return list(s.scalars(select(SyncAttempt).where(SyncAttempt.run_id == run_id).order_by(SyncAttempt.id)))


def _graphql_calls(platforms) -> int:  # noqa: ANN001
    return platforms.shopify.count_calls(lambda c: c.path.endswith("/graphql.json"))


def _invoices(platforms, shop) -> list[str]:  # noqa: ANN001
    return sorted(i["DocNumber"] for i in platforms.quickbooks.objects(shop.realm, "Invoice"))


# -- Shopify: a query over several orders -----------------------------------------------------------

def test_the_shopify_simulator_refuses_a_whole_query_for_one_invalid_global_id(platforms) -> None:  # noqa: ANN001
    """As Shopify: ``ID`` variables are coerced before anything runs, so one bad id answers no order at all."""
    import requests

    from connectors.shopify_bulk_queries import orders_by_id_query

    shop = platforms.shopify.add_shop("ids.myshopify.com")
    platforms.shopify.add_order(shop, an_order(630_001, 4001))
    variables = {"id0": "gid://shopify/Order/630001", "id1": f"gid://shopify/Order/{BAD_ID}",
                 "id2": "gid://shopify/Order/١٢٣"}   # Arabic-Indic digits are not ASCII digits either
    answer = requests.post(f"{platforms.shopify.url}/admin/api/2025-01/graphql.json", timeout=10,
                           headers={"X-Shopify-Access-Token": platforms.shopify.issue_token(shop)},
                           json={"query": orders_by_id_query(3), "variables": variables}).json()
    assert "data" not in answer
    assert [e["message"] for e in answer["errors"]] == [
        "Variable $id1 of type ID! was provided invalid value", "Variable $id2 of type ID! was provided invalid value"]
    assert answer["errors"][0]["extensions"]["problems"][0]["explanation"] == \
        f"Invalid global id 'gid://shopify/Order/{BAD_ID}'"


def test_a_burst_with_one_bad_order_id_invoices_the_other_fifty_in_the_same_pass(make_hub, shop_factory,
                                                                               platforms) -> None:  # noqa: ANN001
    hub = make_hub(O2C_BATCH_WINDOW="2")   # the whole burst lands in one micro-batch window
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    orders = _orders(platforms, shop, 50)
    client = create_app(hub).test_client()
    for n, order in enumerate(orders):
        body, headers = webhook(order, shop.domain)
        assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
        if n == 24:   # a run whose order id Shopify calls invalid, among the others (not from a webhook: the
            [bad] = _open(hub, shop, [BAD_ID])   # receiver refuses such ids; e.g. a run from an older version)
            hub.dispatcher.dispatch(bad)

    done = settled(hub, timeout=60)

    assert len(done) == 51
    failed = [r for r in done if r.status == "failed"]
    assert [r.id for r in failed] == [bad], [(r.id, r.status, r.reason) for r in failed]
    assert BAD_ID in failed[0].reason and failed[0].error_code.startswith("shopify")
    assert failed[0].attempts == 1   # a permanent refusal: failed at once, with its own reason
    good = [r for r in done if r.id != bad]
    assert {r.status for r in good} == {"succeeded"}
    assert {r.attempts for r in good} == {1}, "the bad order cost no other order an attempt"
    assert _invoices(platforms, shop) == sorted(str(o.number) for o in orders)
    # narrowing the one refused query took a few more queries, not one per order
    assert _graphql_calls(platforms) <= math.ceil(51 / BY_ID_MAX) + 2 * math.ceil(math.log2(BY_ID_MAX)) + 2


def test_each_refused_order_fails_alone_whether_or_not_shopify_names_it(make_hub, shop_factory, platforms,
                                                                        monkeypatch) -> None:  # noqa: ANN001
    """Two bad ids in one query (Shopify names each variable), and an order whose node Shopify answers with
    an error of its own (per-alias error with a ``path``, no variable named: found by halving)."""
    import graphql

    from demo.simulators.shopify import ShopifySimulator

    hub = make_hub()
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    orders = _orders(platforms, shop, 12)
    broken = orders[9].order_id
    real = ShopifySimulator._order

    def order(self, domain, gid):  # noqa: ANN001, ANN202
        if gid.endswith(f"/{broken}"):
            raise graphql.GraphQLError("Internal error. Looks like something went wrong on our end.",
                                       extensions={"code": "INTERNAL_ERROR_ORDER"})
        return real(self, domain, gid)

    monkeypatch.setattr(ShopifySimulator, "_order", order)
    sources = [str(o.order_id) for o in orders]
    sources[2:2] = [BAD_ID]
    sources[5:5] = ["12ab"]
    ids = _open(hub, shop, sources)
    by_source = dict(zip(sources, ids, strict=True))

    result = run_batch(hub, ids)

    runs_ = _runs(hub, ids)
    failed = {runs_[i].source_id: runs_[i] for i, st in result.statuses.items() if st == "failed"}
    assert set(failed) == {BAD_ID, "12ab", str(broken)}, {runs_[i].source_id: st for i, st in result.statuses.items()}
    for source_id, run in failed.items():
        assert source_id in run.reason, run.reason   # each with its own reason, naming its own order
    assert "invalid value" in failed[BAD_ID].reason and "Internal error" in failed[str(broken)].reason
    assert result.count("succeeded") == 11 and all(runs_[by_source[s]].attempts == 1 for s in sources)
    assert _invoices(platforms, shop) == sorted(str(o.number) for o in orders if o.order_id != broken)


def test_a_throttled_pull_waits_for_the_cost_bucket_instead_of_failing_its_orders(make_hub, shop_factory,
                                                                                  platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    orders = _orders(platforms, shop, BY_ID_MAX + 1)
    # a shop whose bucket a burst just emptied, restoring 300 points/s: the first query is THROTTLED, however
    # long the hub takes to send it (a Plus shop's 1,000 points/s could refill before a slow first call)
    platforms.shopify.set_throttle(restore_rate=300, currently_available=0, domain=shop.domain)
    ids = _open(hub, shop, [str(o.order_id) for o in orders])

    started = time.monotonic()
    result = run_batch(hub, ids)

    assert result.count("succeeded") == len(orders), {i: r.reason for i, r in _runs(hub, ids).items()}
    assert {r.attempts for r in _runs(hub, ids).values()} == {1}
    with platforms.shopify.lock:
        throttled = sum(1 for op in platforms.shopify.operations if op[3] == "THROTTLED")
    assert throttled >= 1 and _graphql_calls(platforms) > 2   # answered THROTTLED first, then waited and asked again
    assert time.monotonic() - started < 30


# -- QuickBooks: a batch request refused as a whole --------------------------------------------------

def test_a_batch_request_refused_for_one_invoice_is_narrowed_to_it(make_hub, shop_factory, platforms,
                                                                   monkeypatch) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    qb = platforms.quickbooks
    warm = _orders(platforms, shop, 7, first_id=610_001, first_number=3901)
    assert run_batch(hub, _open(hub, shop, [str(o.order_id) for o in warm])).count("succeeded") == 7
    orders = _orders(platforms, shop, 24)
    poison = str(orders[13].number)
    real_batch, real_write = QuickBooksSimulator._batch, QuickBooksSimulator._write

    def refuse(body: dict) -> None:  # the company's parser cannot read this invoice: the request fails whole
        if body.get("DocNumber") == poison:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:Can not deserialize instance of invoice {poison}")

    def batch(self, company, body):  # noqa: ANN001, ANN202
        for item in body.get("BatchItemRequest") or []:
            refuse(item.get("Invoice") or {})
        return real_batch(self, company, body)

    def write(self, company, entity, operation, body):  # noqa: ANN001, ANN202
        if entity == "Invoice":
            refuse(body)
        return real_write(self, company, entity, operation, body)

    monkeypatch.setattr(QuickBooksSimulator, "_batch", batch)
    monkeypatch.setattr(QuickBooksSimulator, "_write", write)
    ids = _open(hub, shop, [str(o.order_id) for o in orders])
    batches_before = qb.count_calls(lambda c: c.path.endswith("/batch"))

    result = run_batch(hub, ids)

    runs_ = _runs(hub, ids)
    failed = [runs_[i] for i, st in result.statuses.items() if st == "failed"]
    assert [r.source_id for r in failed] == [str(orders[13].order_id)], [(r.source_id, r.reason) for r in failed]
    assert poison in failed[0].reason and failed[0].error_code == "quickbooks:2010"
    assert result.count("succeeded") == 23 and {r.attempts for r in runs_.values()} == {1}
    assert _invoices(platforms, shop) == sorted(str(o.number) for o in [*warm, *orders] if str(o.number) != poison)
    # halving 24 down to the culprit: a few batch requests (the payments' included), not 24
    assert qb.count_calls(lambda c: c.path.endswith("/batch")) - batches_before <= 2 * math.ceil(math.log2(24)) + 2


# -- HubSpot: a batch upsert refused as a whole ----------------------------------------------------

def test_a_batch_upsert_refused_for_one_address_fails_only_that_buyers_orders(make_hub, shop_factory,
                                                                             platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    hs = platforms.hubspot
    emails = [f"buyer{n}@example.com" for n in range(11)]
    emails[6] = "buyer6@example"   # HubSpot refuses the whole batch: "Email address buyer6@example is invalid"
    orders = _orders(platforms, shop, 22, emails=emails)
    ids = _open(hub, shop, [str(o.order_id) for o in orders])
    before = hs.count_calls(lambda c: c.path.endswith("/contacts/batch/upsert"))

    result = run_batch(hub, ids)

    runs_ = _runs(hub, ids)
    failed = {runs_[i].source_id for i, st in result.statuses.items() if st == "failed"}
    assert failed == {str(orders[6].order_id), str(orders[17].order_id)}
    assert all("buyer6@example" in runs_[i].reason and runs_[i].error_code.startswith("hubspot")
               for i in ids if runs_[i].source_id in failed)
    assert result.count("succeeded") == 20 and {r.attempts for r in runs_.values()} == {1}
    contacts = sorted(c["properties"]["email"] for c in hs.contacts(shop.portal))
    assert contacts == sorted(m for m in emails if m != "buyer6@example")
    # the address HubSpot named was tried on its own at once: three requests, not eleven
    assert hs.count_calls(lambda c: c.path.endswith("/contacts/batch/upsert")) - before <= 3


# -- a passing fault of a shared call ----------------------------------------------------------------

def test_a_fault_of_a_shared_call_defers_its_runs_without_using_up_their_attempts(make_hub, shop_factory,
                                                                                  platforms) -> None:  # noqa: ANN001
    hub = make_hub(O2C_BACKOFF_BASE="0.05", O2C_BACKOFF_CAP="0.1")
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    orders = _orders(platforms, shop, 8)
    ids = _open(hub, shop, [str(o.order_id) for o in orders])
    platforms.hubspot.fail_next(429, 1, retry_after=1, path_contains="/batch/upsert")

    first = run_batch(hub, ids)

    assert set(first.statuses.values()) == {"retrying"}
    for run in _runs(hub, ids).values():
        assert run.attempts == 0 and "not counted as an attempt" in run.reason, (run.attempts, run.reason)
        assert run.error_code == "hubspot:429" and [a.outcome for a in _attempts(hub, run.id)] == ["deferred"]
        assert (run.next_attempt_at - run.updated_at).total_seconds() >= 0.9   # HubSpot's Retry-After
    assert run_batch(hub, ids).not_due == ids   # not before the wait HubSpot asked for
    time.sleep(1.1)
    platforms.quickbooks.fail_next(503, 1, path_contains="/batch")   # then the customers' batch request

    second = run_batch(hub, ids)

    assert set(second.statuses.values()) == {"retrying"}
    assert {(r.attempts, r.error_code) for r in _runs(hub, ids).values()} == {(0, "quickbooks:503")}
    time.sleep(0.2)

    third = run_batch(hub, ids)

    assert third.count("succeeded") == 8, {i: r.reason for i, r in _runs(hub, ids).items()}
    assert {r.attempts for r in _runs(hub, ids).values()} == {1}
    log = _attempts(hub, ids[0])
    assert [(a.number, a.outcome) for a in log] == [(1, "deferred"), (2, "deferred"), (3, "succeeded")]
    with hub.session() as s:   # the steps name the attempt they were done in (the first did none)
        assert set(s.scalars(select(SyncStep.attempt).where(SyncStep.run_id == ids[0]))) == {2, 3}
    assert len(_invoices(platforms, shop)) == 8


def test_a_fault_of_a_call_a_run_had_alone_counts_and_deferrals_are_bounded(make_hub, shop_factory,
                                                                           platforms) -> None:  # noqa: ANN001
    hub = make_hub(O2C_MAX_ATTEMPTS="2", O2C_BACKOFF_BASE="0.01", O2C_BACKOFF_CAP="0.01")
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    [alone] = _open(hub, shop, [str(o.order_id) for o in _orders(platforms, shop, 1)])
    platforms.shopify.fail_next(503, 1, path_contains="/graphql")
    assert run_batch(hub, [alone]).statuses == {alone: "retrying"}
    run = _runs(hub, [alone])[alone]
    assert run.attempts == 1 and "not counted" not in run.reason   # its own call: an attempt used up

    pair = _open(hub, shop, [str(o.order_id) for o in _orders(platforms, shop, 2, first_id=620_001)])
    platforms.shopify.fail_next(503, 1_000, path_contains="/graphql")   # Shopify is down for a long while
    statuses = []
    for _ in range(max_deferrals(2) + 2):
        time.sleep(0.02)
        statuses.append(set(run_batch(hub, pair).statuses.values()))
    # deferred max_deferrals times without an attempt, then counted: 2 attempts, then failed for good
    assert statuses == [{"retrying"}] * (max_deferrals(2) + 1) + [{"failed"}]
    for run in _runs(hub, pair).values():
        assert run.attempts == 2 and run.reason.startswith("gave up after 2 attempts")
        outcomes = [a.outcome for a in _attempts(hub, run.id)]
        assert outcomes == ["deferred"] * max_deferrals(2) + ["retrying", "failed"]
