"""WSGI entry point (HTTP only; WebSockets are served by the ASGI application)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
application = get_wsgi_application()
