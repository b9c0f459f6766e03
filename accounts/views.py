"""Browser pages: sign-up, verification, two-step sign-in to a session, security settings, API keys, sign-out."""
from functools import wraps

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from brokerx.api.errors import ApiError
from brokerx.ratelimit import Usage, client_ip, rate_limit

from . import selectors, services
from .forms import ApiKeyForm, CodeForm, LoginForm, MfaForm, ResendForm, SignupForm
from .models import MfaMethod

SESSION_CHALLENGE = "accounts_mfa_challenge"
SESSION_METHODS = "accounts_mfa_methods"
SESSION_NEXT = "accounts_login_next"
SESSION_METHOD_DEFAULT = "accounts_mfa_method_default"
SESSION_NEW_KEY = "accounts_new_api_key"


def _limited(request: HttpRequest, usage: Usage) -> HttpResponse:
    return render(request, "accounts/rate_limited.html", {"retry_after": usage.reset_in}, status=429)


def mfa_required(view):
    """A signed-in browser session that passed its second factor; otherwise off to the sign-in page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_verified()):
            return redirect(f"{reverse('accounts:login')}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    return wrapped


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return "/"


@require_http_methods(["GET", "POST"])
@rate_limit(scope="web-signup", rate="20/hour", key="ip", on_limited=_limited)
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_register(**form.cleaned_data)
        except ValidationError as exc:
            form.add_error("password", exc)
        else:
            return redirect("accounts:signup-done")
    return render(request, "accounts/signup.html", {"form": form})


def signup_done(request):
    return render(request, "accounts/check_email.html", {"form": ResendForm()})


@require_POST
@rate_limit(scope="web-verify-resend", rate="5/hour", key="ip", on_limited=_limited)
def verify_email_resend(request):
    form = ResendForm(request.POST)
    if form.is_valid():
        services.email_verification_resend(email=form.cleaned_data["email"])
    messages.info(request, "If this address belongs to an unverified account, a new link is on its way.")
    return redirect(request.POST.get("back") if request.POST.get("back") == "/settings/security/"
                    else "accounts:signup-done")


@require_http_methods(["GET", "POST"])
@rate_limit(scope="web-verify", rate="30/hour", key="ip", on_limited=_limited)
def verify_email(request, token: str):
    # GET only shows a button: mail scanners that prefetch links must not spend the single-use token.
    if request.method == "GET":
        return render(request, "accounts/verify_email.html", {"state": "confirm"})
    try:
        services.email_verify(token=token)
    except ApiError as exc:
        return render(request, "accounts/verify_email.html", {"state": "invalid", "error": exc.message}, status=400)
    return render(request, "accounts/verify_email.html", {"state": "done"})


@require_http_methods(["GET", "POST"])
@rate_limit(scope="web-login", rate="30/min", key="ip", on_limited=_limited)
def login_view(request):
    form = LoginForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST" and form.is_valid():
        try:
            challenge = services.login_start(email=form.cleaned_data["email"], password=form.cleaned_data["password"],
                                             ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", ""))
        except ApiError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[SESSION_CHALLENGE] = str(challenge.id)
            request.session[SESSION_METHODS] = challenge.methods
            request.session[SESSION_METHOD_DEFAULT] = challenge.methods[0]
            request.session[SESSION_NEXT] = _safe_next(request, next_url)
            return redirect("accounts:login-mfa")
    return render(request, "accounts/login.html", {"form": form, "next": next_url}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@rate_limit(scope="web-login-mfa", rate="30/min", key="ip", on_limited=_limited)
def login_mfa(request):
    challenge_id = request.session.get(SESSION_CHALLENGE)
    if not challenge_id:
        return redirect("accounts:login")
    methods = request.session.get(SESSION_METHODS) or [MfaMethod.EMAIL.value]
    form = MfaForm(request.POST or None)
    status = 200
    if request.method == "POST" and request.POST.get("action") == "email":
        try:
            services.login_mfa_email_send(challenge_id=challenge_id)
            request.session[SESSION_METHOD_DEFAULT] = MfaMethod.EMAIL.value
            messages.info(request, "We sent a sign-in code to your e-mail address.")
        except ApiError as exc:
            messages.error(request, exc.message)
        return redirect("accounts:login-mfa")
    if request.method == "POST" and form.is_valid():
        try:
            user, device = services.login_mfa_verify(
                challenge_id=challenge_id, code=form.cleaned_data["code"], method=form.cleaned_data["method"] or None,
                ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", ""))
        except ApiError as exc:
            form.add_error(None, exc.message)
            status = 400
            if exc.code == "challenge_invalid":
                request.session.pop(SESSION_CHALLENGE, None)
        else:
            next_url = request.session.get(SESSION_NEXT) or "/"
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # new session key
            otp_login(request, device)
            for key in (SESSION_CHALLENGE, SESSION_METHODS, SESSION_NEXT, SESSION_METHOD_DEFAULT):
                request.session.pop(key, None)
            return redirect(_safe_next(request, next_url))
    return render(request, "accounts/login_mfa.html", {
        "form": form, "has_totp": MfaMethod.TOTP.value in methods,
        "method_default": request.session.get(SESSION_METHOD_DEFAULT, methods[0]),
    }, status=status)


@require_http_methods(["GET", "POST"])
def logout_view(request):
    if request.method == "POST":
        auth_logout(request)
        messages.info(request, "You are signed out.")
        return redirect("home")
    return render(request, "accounts/logout.html")


@mfa_required
@require_http_methods(["GET", "POST"])
def security(request):
    user = request.user
    provisioning = None
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "totp-start":
                provisioning = services.totp_provision_start(user=user)
                form = CodeForm()
            elif action == "totp-confirm" and form.is_valid():
                services.totp_provision_confirm(user=user, code=form.cleaned_data["code"])
                messages.success(request, "Your authenticator app is active.")
                return redirect("accounts:security")
            elif action == "totp-remove" and form.is_valid():
                services.totp_remove(user=user, code=form.cleaned_data["code"])
                messages.success(request, "Authenticator app removed; sign-in codes now come by e-mail.")
                return redirect("accounts:security")
        except ApiError as exc:
            messages.error(request, exc.message)
            return redirect("accounts:security")
    devices = TOTPDevice.objects.filter(user=user)
    return render(request, "accounts/security.html", {
        "provisioning": provisioning,
        "form": form,
        "totp_active": devices.filter(confirmed=True).exists(),
        "totp_pending": provisioning is not None or devices.filter(confirmed=False).exists(),
        "can_trade": selectors.user_can_trade(user),
        "events": selectors.login_events_for_user(user=user, limit=10),
        "email_method": MfaMethod.EMAIL.label,
    })


@mfa_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            api_key = selectors.api_key_get_for_user(user=request.user, key_id=request.POST.get("key_id", ""))
            if api_key is not None:
                services.api_key_revoke(api_key=api_key)
                messages.success(request, f"Key {api_key.key_id} revoked.")
            return redirect("accounts:api-keys")
        if form.is_valid():
            created = services.api_key_create(user=request.user, **form.cleaned_data)
            # Shown on the next page only; popped at once so a reload cannot show it again.
            request.session[SESSION_NEW_KEY] = {"key_id": created.api_key.key_id, "secret": created.secret}
            return redirect("accounts:api-keys")
    new_key = request.session.pop(SESSION_NEW_KEY, None)
    return render(request, "accounts/api_keys.html", {
        "form": ApiKeyForm() if new_key else form,
        "keys": selectors.api_keys_for_user(user=request.user),
        "new_key": new_key,
    })
