from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from neurons.validation import refuse_control_characters, refuse_invisible

TEXT = [refuse_control_characters, refuse_invisible]  # a name shows on every claim, and in feeds


class SignUpForm(UserCreationForm):
    name = forms.CharField(
        max_length=120, help_text="As others will see it on your claims.", validators=TEXT
    )
    institution = forms.CharField(max_length=200, required=False, validators=TEXT)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "name", "institution")


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=120, validators=TEXT)
    institution = forms.CharField(max_length=200, required=False, validators=TEXT)
