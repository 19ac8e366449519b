from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm


class SignUpForm(UserCreationForm):
    name = forms.CharField(max_length=120, help_text="As others will see it on your claims.")
    institution = forms.CharField(max_length=200, required=False)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "name", "institution")


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=120)
    institution = forms.CharField(max_length=200, required=False)
