"""Forms read and check the shape of input; the services decide the rest."""

from __future__ import annotations

from django import forms

from annotations.models import Kind, Verdict
from annotations.services import ARGUMENT_MAX, COMMENT_MAX, LABEL_MAX, REASON_MAX, ClaimError
from neurons.validation import whole_number

ARGUMENT_HELP = "Markdown. Neuron references such as 4b:373 become links."


class WholeNumberField(forms.IntegerField):
    """ASCII digits only: Django's IntegerField also reads "5.0", and "\\u0665" (an
    Arabic-Indic five) as 5."""

    def to_python(self, value: object) -> int | None:
        if isinstance(value, str) and value.strip() and whole_number(value.strip()) is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def form_add_claim_error(form: forms.Form, error: ClaimError) -> None:
    """Put a service's refusal on the field it names (else on the whole form)."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class ClaimCreateForm(forms.Form):
    target = forms.CharField(widget=forms.HiddenInput, max_length=200)
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.CIRCUIT, widget=forms.RadioSelect)
    expression = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Circuit claims: e.g. 4c:447 = 0.8*4b:373 + 4b:237 - 4b:12",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    label = forms.CharField(max_length=LABEL_MAX)
    argument = forms.CharField(
        max_length=ARGUMENT_MAX, widget=forms.Textarea(attrs={"rows": 6}), help_text=ARGUMENT_HELP
    )


class ClaimEditForm(forms.Form):
    based_on = WholeNumberField(widget=forms.HiddenInput, min_value=1)
    expression = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    label = forms.CharField(max_length=LABEL_MAX)
    argument = forms.CharField(
        max_length=ARGUMENT_MAX, widget=forms.Textarea(attrs={"rows": 10}), help_text=ARGUMENT_HELP
    )


class ReviewForm(forms.Form):
    revision = WholeNumberField(widget=forms.HiddenInput, min_value=1)
    verdict = forms.ChoiceField(choices=Verdict.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required: what you checked and what you found. Markdown.",
    )


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )


class HideForm(forms.Form):
    hidden = forms.BooleanField(required=False)
