"""Monthly statements: built from the ledger after real activity, they agree with it, per account and in total."""
import csv
import datetime as dt
import io
import re
import zlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice
from rest_framework.test import APIClient

from accounts.models import ApiKeyScope, StaffAuditLog
from accounts.services import api_key_create
from orders.models import Order
from orders.services import OrderRequest, order_place
from portfolios.models import LedgerAccount
from portfolios.services import deposit_create, deposit_settle, withdrawal_create
from portfolios.statement_files import statement_csv, statement_pdf_document
from portfolios.statements import MOVEMENT_COLUMNS, InvalidMonth, statement_for_user, statement_month
from tests.factories import UserFactory
from tests.trading_fixtures import assert_books_balanced, match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]


def place(user, side: str, qty: str, price: str) -> Order:
    order, _ = order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                           qty=Decimal(qty), limit_price=Decimal(price)))
    return order


def sections(text: str) -> dict[str, list[dict]]:
    """The CSV's blocks: title row, header row, rows, empty row."""
    blocks, rows = {}, list(csv.reader(io.StringIO(text)))
    i = 0
    while i < len(rows):
        title, header = rows[i][0], rows[i + 1]
        i += 2
        blocks[title] = []
        while i < len(rows) and rows[i]:
            blocks[title].append(dict(zip(header, rows[i], strict=True)))
            i += 1
        i += 1
    return blocks


def pdf_text(data: bytes) -> str:
    """The text drawn on the pages, read from the (zlib) content streams without a PDF library."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    out = []
    for stream in streams:
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "\n".join(out)


def month_now() -> str:
    return f"{timezone.now():%Y-%m}"


@pytest.fixture
def active_trader(instrument, make_trader):
    """A deposit settled, a withdrawal paid, one held for review, a buy filled with a taker fee, a buy resting."""
    trader = make_trader()
    seller = make_trader(shares={"ACME": "10"})
    deposit_settle(deposit_id=deposit_create(user=trader, amount=Decimal("20000")).pk)
    withdrawal_create(user=trader, amount=Decimal("150"))
    held = withdrawal_create(user=trader, amount=Decimal("12000"))
    assert held.status == "pending_review"
    place(seller, "sell", "10", "100.00")
    match()
    place(trader, "buy", "10", "101.00")
    match()
    place(trader, "buy", "5", "95.00")
    match()
    return trader


def test_the_csv_agrees_with_the_ledger_per_account(active_trader):
    blocks = sections(statement_csv(statement_for_user(active_trader, month=month_now())))

    accounts = {(row["account"], row["asset"]): row for row in blocks["balances"]}
    ledger = {(a.kind, a.asset): a.balance for a in LedgerAccount.objects.filter(owner=active_trader)}
    for key, balance in ledger.items():
        row = accounts[key]
        assert Decimal(row["closing"]) == balance, key
        moved = sum(Decimal(row[c]) for c in MOVEMENT_COLUMNS)
        assert Decimal(row["opening"]) + moved == Decimal(row["closing"]), key
    # 20000 - 150 - 12000 - 1000.50 (10 x 100 + fee) - 475.24 (5 x 95 and the fee it may pay, held for the order)
    assert accounts["cash_available", "USD"]["closing"] == "6374.2600"
    assert accounts["cash_reserved", "USD"]["closing"] == "475.2400"
    # both buys reserved cash (the first at its 101 limit, the surplus given back); the fill paid from the reservation
    assert (accounts["cash_reserved", "USD"]["order_holds"], accounts["cash_reserved", "USD"]["trades"]) == (
        "1475.7400", "-1000.5000")
    assert accounts["cash_held", "USD"]["closing"] == "12000.0000"
    assert accounts["cash_available", "USD"]["deposits"] == "20000.0000"
    assert accounts["cash_available", "USD"]["withdrawals"] == "-12150.0000"

    assert [(f["symbol"], f["side"], f["qty"], f["price"], f["fee"], f["cash"]) for f in blocks["fills"]] == [
        ("ACME", "buy", "10.0000", "100.0000", "0.5000", "-1000.5000")]
    assert blocks["fees"] == [{"currency": "USD", "total": "0.5000"}]
    assert {(d["type"], d["account"], d["amount"]) for d in blocks["deposits"]} == {
        ("deposit", "cash_pending", "20000.0000"), ("deposit_settle", "cash_pending", "-20000.0000"),
        ("deposit_settle", "cash_available", "20000.0000")}
    assert {(w["type"], w["amount"]) for w in blocks["withdrawals"]} == {
        ("withdrawal", "-150.0000"), ("withdrawal_hold", "-12000.0000"), ("withdrawal_hold", "12000.0000")}
    assert blocks["adjustments"] == []  # the seller was funded, not this trader
    assert blocks["positions at month end"] == [
        {"symbol": "ACME", "shares": "10.0000", "available": "10.0000", "reserved": "0.0000", "price": "100.0000",
         "value": "1000.0000"}]
    assert blocks["opening positions"] == []
    assert blocks["statement"][1] == {"field": "trader", "value": active_trader.email}
    assert_books_balanced()


def test_a_month_without_activity_opens_as_it_closes(active_trader):
    later = timezone.now() + dt.timedelta(days=40)
    statement = statement_for_user(active_trader, month=f"{later:%Y-%m}", now=later)

    for line in statement.accounts:
        assert line.opening == line.closing and not any(line.movements.values()), line
    assert statement.cash("cash_available") == statement.cash("cash_available", closing=False) == Decimal("6374.26")
    assert statement.opening_holdings == statement.closing_holdings
    assert statement.fills == statement.deposits == statement.withdrawals == []
    assert statement.fees_total == 0
    assert_books_balanced()


def test_the_pdf_names_the_trader_and_the_period(active_trader):
    month = month_now()
    client = APIClient()
    client.force_authenticate(active_trader)

    response = client.get(f"/api/v1/statements/{month}.pdf")

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f"brokerx-statement-{month}.pdf" in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert active_trader.email in text and f"Account statement {month}" in text and "Page 1 of " in text
    assert statement_pdf_document(statement_for_user(active_trader, month=month)).pages_count >= 1
    assert_books_balanced()


def test_the_csv_download_with_a_read_key(active_trader):
    created = api_key_create(user=active_trader, name="books", scope=ApiKeyScope.READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {created.api_key.key_id}:{created.secret}")

    response = client.get(f"/api/v1/statements/{month_now()}.csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert sections(response.content.decode())["fees"][0]["total"] == "0.5000"


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "26-01", "2026-1x", "9999-01"])
def test_a_bad_month_is_400_with_the_error_shape(month):
    client = APIClient()
    client.force_authenticate(UserFactory())

    for extension in ("csv", "pdf"):
        response = client.get(f"/api/v1/statements/{month}.{extension}")
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid_month" and body["message"] and body["details"] == {"month": month}


def test_statement_month_bounds():
    now = dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC)
    assert statement_month("2026-12", now=now) == (now.replace(day=1, hour=0, minute=0), now.replace(
        year=2027, month=1, day=1, hour=0, minute=0))
    with pytest.raises(InvalidMonth):
        statement_month("2027-01", now=now)


def test_nobody_reads_another_traders_statement(active_trader, make_trader):
    """The route names no user: the statement is always the requester's own."""
    other = make_trader(cash="10")
    client = APIClient()
    client.force_authenticate(other)

    text = client.get(f"/api/v1/statements/{month_now()}.csv").content.decode()

    assert active_trader.email not in text and "20000" not in text and "ACME" not in text
    assert sections(text)["statement"][1]["value"] == other.email
    assert APIClient().get(f"/api/v1/statements/{month_now()}.csv").status_code == 401
    assert_books_balanced()


def test_the_portfolio_page_links_this_and_last_months_statements(active_trader):
    client = Client()
    client.force_login(active_trader)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = EmailDevice.objects.create(user=active_trader, name="e-mail",
                                                                confirmed=True).persistent_id
    session.save()
    page = client.get("/portfolio/").content.decode()
    previous = (timezone.now().replace(day=1) - dt.timedelta(days=1))
    for month in (month_now(), f"{previous:%Y-%m}"):
        assert f'href="/api/v1/statements/{month}.pdf"' in page and f'href="/api/v1/statements/{month}.csv"' in page
    assert client.get(f"/api/v1/statements/{month_now()}.csv").status_code == 200  # the session is enough


def _staff_client(*roles: str) -> tuple[Client, object]:
    member = UserFactory(is_staff=True)
    member.groups.set(Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(member)
    session = client.session
    device = EmailDevice.objects.create(user=member, name="e-mail", confirmed=True)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client, member


@pytest.mark.parametrize("role", ["finance", "compliance"])
def test_finance_and_compliance_download_a_clients_statement(active_trader, role):
    client, member = _staff_client(role)
    month = month_now()

    assert 'href="/admin/statements/' in client.get(f"/admin/accounts/user/{active_trader.pk}/change/").content.decode()
    page = client.get(f"/admin/statements/{active_trader.pk}/")
    assert page.status_code == 200 and f"/admin/statements/{active_trader.pk}/{month}.pdf" in page.content.decode()
    csv_answer = client.get(f"/admin/statements/{active_trader.pk}/{month}.csv")
    pdf_answer = client.get(f"/admin/statements/{active_trader.pk}/{month}.pdf")

    assert csv_answer.status_code == 200
    assert sections(csv_answer.content.decode())["statement"][1]["value"] == active_trader.email
    assert pdf_answer.status_code == 200 and pdf_answer.content.startswith(b"%PDF")
    assert StaffAuditLog.objects.filter(actor=member, action="statement_download",
                                        object_id=str(active_trader.pk)).count() == 2
    assert client.get(f"/admin/statements/{active_trader.pk}/?month={month}&format=csv").status_code == 302
    assert client.get(f"/admin/statements/{active_trader.pk}/2026-13.csv").status_code == 400


def test_other_staff_and_traders_cannot_download_a_clients_statement(active_trader):
    support, _ = _staff_client("support")
    assert support.get(f"/admin/statements/{active_trader.pk}/{month_now()}.csv").status_code == 403
    assert support.get(f"/admin/statements/{active_trader.pk}/").status_code == 403
    trader = Client()
    trader.force_login(UserFactory())
    answer = trader.get(f"/admin/statements/{active_trader.pk}/{month_now()}.csv")
    assert answer.status_code == 302 and active_trader.email not in answer.content.decode()
    assert not StaffAuditLog.objects.filter(action="statement_download").exists()
