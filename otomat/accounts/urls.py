from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from otomat.accounts import views, views_two_factor

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/code/", views_two_factor.login_code, name="login_code"),
    path("two-factor/", views_two_factor.security, name="two_factor"),
    path("two-factor/set-up/", views_two_factor.enrol, name="two_factor_enrol"),
    path(
        "two-factor/recovery-codes/",
        views_two_factor.regenerate_codes,
        name="two_factor_regenerate",
    ),
    path("two-factor/turn-off/", views_two_factor.disable, name="two_factor_disable"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            success_url=reverse_lazy("accounts:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            success_url=reverse_lazy("accounts:login"),
        ),
        name="password_reset_confirm",
    ),
    path("members/", views.members, name="members"),
    path("members/<int:user_id>/remove/", views.remove_member, name="remove_member"),
    path("preferences/", views.preferences, name="preferences"),
    path("api-tokens/", views.api_tokens, name="api_tokens"),
    path("api-tokens/<int:token_id>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("audit/", views.audit_log, name="audit_log"),
]
