"""Forms of the browser pages (sign-up, sign-in, second factor, TOTP, API keys)."""
from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html

from .models import ApiKeyScope, MfaMethod


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True}))
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(max_length=128, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=password_validators_help_text_html())


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(max_length=128, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class MfaForm(forms.Form):
    method = forms.ChoiceField(choices=MfaMethod.choices, required=False)
    code = forms.CharField(max_length=16, widget=forms.TextInput(
        attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "pattern": "[0-9 ]*"}))


class CodeForm(forms.Form):
    code = forms.CharField(max_length=16, widget=forms.TextInput(
        attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*"}))


class ResendForm(forms.Form):
    email = forms.EmailField(max_length=254)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=ApiKeyScope.choices, initial=ApiKeyScope.READ)
