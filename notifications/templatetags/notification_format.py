"""Template filters over notifications.formatting, for the e-mail templates: {{ fill.last_qty|qty }}, |price."""
from django import template

from notifications.formatting import format_price, format_qty

register = template.Library()
register.filter("qty", format_qty)
register.filter("price", format_price)
