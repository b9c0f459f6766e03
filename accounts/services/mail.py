"""E-mail of the accounts context, rendered from templates and sent through Django's backend after commit."""
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string


def send_after_commit(*, to: str, subject: str, template: str, context: dict) -> None:
    body = render_to_string(template, {"site_url": settings.SITE_URL, **context})
    transaction.on_commit(lambda: send_mail(subject, body, None, [to]))
