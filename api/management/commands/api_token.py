"""Personal API tokens from the shell: ``api_token create|revoke|list <username>``."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from api.selectors import api_token_get, api_token_list
from api.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create, revoke or list a user's personal API tokens. A new key is shown once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["create", "revoke", "list"])
        parser.add_argument("username")
        parser.add_argument(
            "prefix", nargs="?", default="", help="revoke: the token's prefix as list shows it"
        )
        parser.add_argument("--name", default="command line", help="create: what it is for")
        parser.add_argument("--all", action="store_true", help="revoke: every active token")

    def handle(self, *args: Any, action: str, username: str, **options: Any) -> None:
        User = get_user_model()
        field = User.USERNAME_FIELD
        user = User.objects.filter(**{field: username}).first()
        if user is None:  # as sign-up and user_create see names: "ALICE", fullwidth letters
            alike = User.objects.filter(**{f"{field}__iexact": User.normalize_username(username)})
            user = alike.first() if len(alike[:2]) == 1 else None
        if user is None:
            raise CommandError(f"no user {username[:150]!r}")
        username = user.get_username()
        if action == "create":
            try:
                token, key = api_token_create(user=user, name=options["name"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            self.stdout.write(key)
            self.stderr.write(f"Token {token.prefix}… for {username}; the key is shown only once.")
        elif action == "list":
            for token in api_token_list(user=user):
                state = f"revoked {token.revoked:%Y-%m-%d}" if token.revoked else "active"
                used = f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "never"
                self.stdout.write(
                    f"{token.prefix}  {state:18}  created {token.created:%Y-%m-%d}  "
                    f"last used {used}  {token.name}"
                )
        elif options["all"]:
            if options["prefix"]:  # which one was meant? Revoking cannot be undone.
                raise CommandError("give a token's prefix or --all, not both")
            tokens = list(api_token_list(user=user).filter(revoked__isnull=True))
            for token in tokens:
                api_token_revoke(token=token)
            self.stdout.write(f"Revoked {len(tokens)} token(s) of {username}.")
        else:
            if not options["prefix"]:
                raise CommandError(
                    "say which token: api_token revoke <username> <prefix> (or --all)"
                )
            try:
                token = api_token_get(user=user, prefix=options["prefix"])
            except Http404 as exc:
                raise CommandError(str(exc)) from None
            api_token_revoke(token=token)
            self.stdout.write(f"Revoked {token.prefix}… ({token.name}) of {username}.")
