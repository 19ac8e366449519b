"""Create a researcher (or a staff member) from a script: ``manage.py user_create``."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from neurons.validation import CONTROL_RE
from people.forms import ProfileForm, refuse_foreign_form
from people.services import user_create

EMAIL_MAX = 254  # Django's EmailField


def _password_check(password: str) -> None:
    """Refuse a password that no one could type into the log-in form."""
    try:
        password.encode("utf-8")  # stdin's bytes that are not UTF-8 read as surrogates
    except UnicodeEncodeError:
        raise CommandError("password: stdin's bytes are not UTF-8 text") from None
    if (found := CONTROL_RE.search(password)) is not None:
        shown = repr(found.group())[1:-1]
        raise CommandError(f"password: a control character ({shown}) no form can send")


class Command(BaseCommand):
    help = (
        "Create an account with a profile, for labs that script their setup. Without "
        "--password-stdin the account has no password: it works through API tokens "
        "(`manage.py api_token create USERNAME`) until a password is reset or set."
    )

    stealth_options = ("stdin",)  # call_command(..., stdin=...), as createsuperuser takes

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="shown on claims (default: username)")
        parser.add_argument("--institution", default="")
        parser.add_argument("--email", default="", help="for password resets")
        parser.add_argument("--staff", action="store_true", help="may hide content, import")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = user_model.normalize_username(options["username"])  # NFKC, as sign-up
        if not username:
            raise CommandError("username: give one")
        try:
            # The field's validators: its characters (username_validator) and its length.
            user_model._meta.get_field("username").run_validators(username)
            refuse_foreign_form(username)
        except ValidationError as exc:
            raise CommandError(f"username {username!r}: {' '.join(exc.messages)}") from None
        if user_model.objects.filter(username__iexact=username).exists():  # as sign-up
            raise CommandError(f"{username!r} exists already")
        name_max = ProfileForm.base_fields["name"].max_length or 120
        profile = ProfileForm({**options, "name": options["name"] or username[:name_max]})
        if not profile.is_valid():
            field, messages = next(iter(profile.errors.items()))
            raise CommandError(f"--{field}: {' '.join(messages)}")
        if options["email"]:
            if len(options["email"]) > EMAIL_MAX:
                raise CommandError(f"--email: at most {EMAIL_MAX} characters")
            try:
                validate_email(options["email"])
            except ValidationError as exc:
                raise CommandError(f"--email: {' '.join(exc.messages)}") from None
        password = None
        if options["password_stdin"]:
            password = (options.get("stdin") or sys.stdin).readline().rstrip("\r\n")
            if not password:
                raise CommandError(
                    "password: stdin gave none (leave out --password-stdin for none)"
                )
            _password_check(password)
            try:
                unsaved = user_model(username=username, email=options["email"])
                password_validation.validate_password(password, user=unsaved)
            except ValidationError as exc:
                raise CommandError(f"password: {' '.join(exc.messages)}") from None
        profile = user_create(
            username=username,
            password=password,
            name=profile.cleaned_data["name"],
            institution=profile.cleaned_data["institution"],
            email=options["email"],
            staff=options["staff"],
        )
        kind = "staff member" if profile.user.is_staff else "researcher"
        how = "a password" if password else "no password (API tokens only)"
        self.stdout.write(f"{username}: {kind} created, with {how}")
