from django.contrib.auth.backends import ModelBackend
from django.db.models import Exists, OuterRef
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
        user = (
            User.objects.select_related("membership__account")
            .annotate(
                authenticator_at_load=Exists(
                    TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
                )
            )
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
