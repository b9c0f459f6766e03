"""CSRF: every POST form of the browser pages, and every API write made with the browser's session, is refused
without the token (Client(enforce_csrf_checks=True)), and writes nothing.

The forms are read from the rendered pages themselves, so a form added to a page is checked without a change here;
`test_every_browser_page_is_visited` fails when a browser route appears that the sweep does not visit.
"""
import hashlib
import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice

from accounts.models import EmailVerificationToken
from tests.factories import UserFactory

from .conftest import routes, snapshot
from .test_api_key_scopes import WRITES

pytestmark = pytest.mark.django_db

VERIFY_TOKEN = "sweep-verify-token"
# Browser routes (namespace accounts, web, the home page) -> who opens the page.
PAGES = {
    "accounts:signup": "anonymous", "accounts:signup-done": "anonymous", "accounts:login": "anonymous",
    "accounts:verify-email": "anonymous", "accounts:login-mfa": "pending", "accounts:logout": "trader",
    "accounts:security": "trader", "accounts:api-keys": "trader", "web:trade": "trader", "web:portfolio": "trader",
    "home": "trader",
}
# Browser routes that are only ever the target of a form on another page.
FORM_TARGETS = {"accounts:verify-email-resend"}
# Back-office pages with a form of our own or Django's, opened by staff past their second factor.
ADMIN_PAGES = {"admin:portfolios_adjustment", "admin:accounts_user_change"}


class Forms(HTMLParser):
    """The POST forms of a page: action and the fields a browser would send (first option of a select)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._form = {"method": (attrs.get("method") or "get").lower(), "action": attrs.get("action"),
                          "fields": {}}
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "button", "textarea") and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._form["fields"].setdefault(attrs["name"], attrs.get("value") or "1")
        elif self._form is not None and tag == "select":
            self._select = attrs.get("name")
        elif self._form is not None and tag == "option" and self._select:
            self._form["fields"].setdefault(self._select, attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def post_forms(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return [f for f in parser.forms if f["method"] == "post"]


def mfa_client(user) -> Client:
    """A CSRF-enforcing browser whose session passed the second factor (as /login/mfa/ leaves it)."""
    device, _ = EmailDevice.objects.get_or_create(user=user, name="email", defaults={"confirmed": True})
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def page_client(who: str) -> Client:
    if who == "anonymous":
        return Client(enforce_csrf_checks=True)
    if who == "pending":  # password accepted, second factor to come: through the login form, token and all
        user = UserFactory()
        client = Client(enforce_csrf_checks=True)
        client.get("/login/")
        response = client.post("/login/", {"email": user.email, "password": "x-Test-pass-1",
                                           "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value})
        assert response.status_code == 302, response.content
        return client
    if who == "trader":
        return mfa_client(UserFactory())
    if who == "staff":
        return mfa_client(UserFactory(is_staff=True, is_superuser=True))
    raise ValueError(who)


def page_path(route: str) -> str:
    if route == "accounts:verify-email":
        EmailVerificationToken.objects.create(user=UserFactory(email_verified_at=None),
                                              token_hash=hashlib.sha256(VERIFY_TOKEN.encode()).hexdigest(),
                                              expires_at=timezone.now() + timedelta(hours=1))
        return reverse(route, kwargs={"token": VERIFY_TOKEN})
    if route == "admin:accounts_user_change":
        return reverse(route, args=[UserFactory().pk])
    return reverse(route)


def sessions_and_accounts() -> dict:
    from django.contrib.sessions.models import Session
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import LoginEvent, StaffAuditLog, User

    users = list(User.objects.order_by("pk").values_list("pk", "email", "email_verified_at", "locked_at", "password"))
    return {**snapshot(), "users": users, "totp devices": TOTPDevice.objects.count(),
            "login events": LoginEvent.objects.count(), "audit": StaffAuditLog.objects.count(),
            "sessions": sorted(Session.objects.values_list("session_key", flat=True))}


def test_every_browser_page_is_visited():
    browser = {name for path, name, _ in routes()
               if name and (name.startswith(("accounts:", "web:")) or name == "home")}

    assert browser - set(PAGES) - FORM_TARGETS == set(), "browser routes the CSRF sweep does not visit"


def _forms_of(route: str, who: str):
    client = page_client(who)
    path = page_path(route)
    page = client.get(path)
    assert page.status_code == 200, (route, page.status_code)
    return client, path, post_forms(page.content.decode())


@pytest.mark.parametrize("route", sorted(PAGES) + sorted(ADMIN_PAGES))
def test_every_post_form_is_refused_without_the_token(route):
    client, path, forms = _forms_of(route, "staff" if route in ADMIN_PAGES else PAGES[route])

    for form in forms:
        assert "csrfmiddlewaretoken" in form["fields"], (route, form)  # the page does send it
        fields = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
        before = sessions_and_accounts()

        response = client.post(form["action"] or path, fields)

        assert response.status_code == 403 and b"CSRF" in response.content, (route, form, response.status_code)
        assert sessions_and_accounts() == before, (route, form)


def test_the_forms_found_cover_every_form_target():
    """Each form target route is reached by a form the sweep refuses (the resend form of two pages)."""
    targets = set()
    for route, who in PAGES.items():
        _, path, forms = _forms_of(route, who)
        targets |= {resolve(form["action"] or path).view_name for form in forms}

    assert targets >= FORM_TARGETS
    assert {"accounts:signup", "accounts:login", "accounts:login-mfa", "accounts:logout", "accounts:security",
            "accounts:api-keys", "accounts:verify-email"} <= targets


def test_the_token_is_what_was_missing():
    """The control: the sign-up form with its token is accepted, so the 403s above are CSRF refusals."""
    client = Client(enforce_csrf_checks=True)
    client.get("/signup/")
    response = client.post("/signup/", {"email": "csrf-control@example.com", "password": "Tulip-Fields-77",
                                        "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value})
    assert response.status_code == 302


# --- the API with the browser's session (the trade and portfolio pages' scripts) ---------------------------------

@pytest.mark.parametrize(("route", "method"), sorted(w for w in WRITES if w[0].startswith("v1:")))
def test_api_writes_with_the_session_need_the_token(alice, route, method):
    client = mfa_client(alice.user)
    path, body, headers = WRITES[route, method](alice)
    before = snapshot()

    response = client.generic(method, path, data=b"" if body is None else json.dumps(body),
                              content_type="application/json", **headers)

    assert response.status_code == 403 and "csrf" in response.content.decode().lower(), (response.status_code,
                                                                                         response.content)
    assert snapshot() == before


def test_an_api_write_with_the_session_and_the_token_goes_through(alice):
    client = mfa_client(alice.user)
    client.get("/trade/")  # sets the CSRF cookie, as the page does for its script
    response = client.post("/api/v1/orders", {"symbol": "ACME", "side": "sell", "type": "limit",
                                              "time_in_force": "gtc", "qty": "1", "limit_price": "101.00"},
                           content_type="application/json",
                           HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
    assert response.status_code == 201, response.content
