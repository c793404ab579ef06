from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django_otp.plugins.otp_totp.models import TOTPDevice

from otomat.accounts.models import User


class EmailBackend(ModelBackend):
    """Log in with the email address, case-insensitively."""

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        email = (email or username or "").strip().lower()
        if not email or password is None:
            return None
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            User().set_password(password)  # same cost as a real check: no timing oracle
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """The signed-in person of each request, with their membership and account and whether
        they have a confirmed authenticator, in one query instead of three (every page needs
        all of them: the menu names the account, the second-factor gate asks for the code)."""
        found = list(
            User.objects.select_related("membership__account")
            .annotate(authenticator_at_load=_has_confirmed_authenticator())
            .filter(pk=user_id)[:1]
        )
        user = found[0] if found else None
        return user if user is not None and self.user_can_authenticate(user) else None


def _has_confirmed_authenticator() -> RawSQL:
    """EXISTS (a confirmed TOTP device of the row's user), written out: every request of a
    signed-in person runs it, and Django builds an ``Exists`` subquery anew each time (about
    half of this query's 1.1 ms, against 0.07 ms to run it)."""
    # Only identifiers from the models' metadata, quoted by the database's own rule; no values.
    q = connection.ops.quote_name
    device, user = q(TOTPDevice._meta.db_table), q(User._meta.db_table)
    return RawSQL(  # noqa: S611
        f"EXISTS (SELECT 1 FROM {device} WHERE {device}.{q('user_id')} = {user}.{q('id')}"  # noqa: S608
        f" AND {device}.{q('confirmed')})",
        (),
        output_field=BooleanField(),
    )
