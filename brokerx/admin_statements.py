"""The back office's client statements (/admin/statements/<user id>/): compliance and finance download a client's
monthly statement; each download is written to the staff audit log."""
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.services import staff_audit_record
from brokerx.ratelimit import client_ip
from portfolios.statement_files import statement_csv, statement_filename, statement_pdf
from portfolios.statements import InvalidMonth, recent_statement_months, statement_for_user

# Held by the finance and compliance roles (accounts.0004_staff_roles), not by support or operations.
STATEMENT_PERMISSION = "portfolios.view_journalentry"
RENDERERS = {"csv": ("text/csv; charset=utf-8", statement_csv), "pdf": ("application/pdf", statement_pdf)}


def _client(request, user_id: int):
    if not request.user.has_perm(STATEMENT_PERMISSION):
        raise PermissionDenied
    return get_object_or_404(get_user_model(), pk=user_id)


def client_statements_view(request, admin_site, user_id: int):
    """The recent months' downloads, and a month picker for any other."""
    client = _client(request, user_id)
    month, extension = request.GET.get("month", ""), request.GET.get("format", "pdf")
    if month and extension in RENDERERS:
        return redirect(reverse("admin:client-statement", args=[client.pk, month, extension],
                                current_app=admin_site.name))
    context = {**admin_site.each_context(request), "title": f"Statements of {client.email}", "client": client,
               "months": recent_statement_months()}
    return TemplateResponse(request, "admin/client_statements.html", context)


def client_statement_download(request, admin_site, user_id: int, month: str, extension: str):
    client = _client(request, user_id)
    if extension not in RENDERERS:
        raise Http404
    try:
        statement = statement_for_user(client, month=month)
    except InvalidMonth as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    media_type, render = RENDERERS[extension]
    staff_audit_record(actor=request.user, action="statement_download", obj=client,
                       details={"month": month, "format": extension}, ip=client_ip(request))
    response = HttpResponse(render(statement), content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{statement_filename(statement, extension)}"'
    return response
