"""The back office: Django's admin reachable only by active, unlocked staff whose session passed a second factor.

Roles are Django groups (migration accounts.0004_staff_roles). Django lets anyone who may see a list run its
actions unless the action names `allowed_permissions`; here an action that names none needs the change permission
on its model, so a read-only role (support, compliance) can run no action anywhere.
"""
from urllib.parse import urlencode

from django.db.models.base import ModelBase
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django_otp.admin import OTPAdminSite

from brokerx.admin_operations import operations_view
from brokerx.admin_statements import client_statement_download, client_statements_view


class BrokerXAdminSite(OTPAdminSite):
    site_header = "BrokerX back office"
    site_title = "BrokerX back office"
    index_title = "Operations"
    index_template = "admin/brokerx_index.html"  # Django's index with a link to the operations page

    def __init__(self, name: str = "admin"):
        # Named "admin" (not django-otp's "otpadmin") so `reverse("admin:...")` keeps working everywhere.
        super().__init__(name)

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, admin_class, **options)
        models = [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        for model in models:
            if model in self._registry:  # a swapped model (auth.User) is not registered
                _actions_need_change_permission(self._registry[model])

    def get_urls(self):
        # Any member of staff (has_permission) may see the operations page: it reads, it changes nothing.
        page = self.admin_view(lambda request: operations_view(request, self))
        # Client statements: staff, and then the statement permission (finance, compliance), checked by the view.
        statements = self.admin_view(lambda request, user_id: client_statements_view(request, self, user_id))
        download = self.admin_view(lambda request, user_id, month, extension:
                                   client_statement_download(request, self, user_id, month, extension))
        return [path("operations/", page, name="operations"),
                path("statements/<int:user_id>/", statements, name="client-statements"),
                path("statements/<int:user_id>/<str:month>.<str:extension>", download, name="client-statement"),
                *super().get_urls()]

    def has_permission(self, request) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and getattr(user, "locked_at", None) is None
            and callable(getattr(user, "is_verified", None))
            and user.is_verified()
        )

    def login(self, request, extra_context=None):
        # One sign-in path for everybody (password, then TOTP or e-mail code): the site's own login pages.
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")


def _actions_need_change_permission(model_admin) -> None:
    for action in model_admin.actions or ():
        func = getattr(type(model_admin), action, None) if isinstance(action, str) else action
        if func is not None and not hasattr(func, "allowed_permissions"):
            func.allowed_permissions = ("change",)
