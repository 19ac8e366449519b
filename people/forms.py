from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from people.models import TEXT


def refuse_foreign_form(username: str) -> None:
    """``name@host`` is how people imported from another instance are named here."""
    if "@" in username:
        raise forms.ValidationError(
            "a username here has no @: name@host is a person of another instance"
        )


class SignUpForm(UserCreationForm):
    name = forms.CharField(
        max_length=120, help_text="As others will see it on your claims.", validators=TEXT
    )
    institution = forms.CharField(max_length=200, required=False, validators=TEXT)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "name", "institution")

    def clean_username(self) -> str:
        username = super().clean_username()
        if username:  # None when the field itself was refused
            refuse_foreign_form(username)
        return username


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=120, validators=TEXT)
    institution = forms.CharField(max_length=200, required=False, validators=TEXT)
