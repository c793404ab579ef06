from django.urls import path

from otomat.billing import views, views_staff

app_name = "billing"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:invoice_id>/proof/", views.upload_proof, name="upload_proof"),
    path("credit-notes/<int:note_id>/pdf/", views.credit_note_pdf, name="credit_note_pdf"),
    path("pay/<str:token>/", views.pay, name="pay"),
    path("pay/<str:token>/return/", views.pay_return, name="pay_return"),
    path("callback/<slug:gateway>/", views.callback, name="callback"),
    path("subscriptions/<int:subscription_id>/plan/", views.change_plan, name="change_plan"),
    path("subscriptions/<int:subscription_id>/cancel/", views.cancel, name="cancel"),
    path("subscriptions/<int:subscription_id>/resume/", views.resume, name="resume"),
    path("profile/", views.profile, name="profile"),
    # staff
    path("manage/", views_staff.dashboard, name="dashboard"),
    path("manage/actions/", views_staff.actions, name="actions"),
    path("manage/invoices/", views_staff.invoices, name="manage_invoices"),
    path("manage/invoices/<int:invoice_id>/", views_staff.invoice_manage, name="invoice_manage"),
    path("manage/proofs/", views_staff.proofs, name="proofs"),
    path("manage/proofs/<int:proof_id>/", views_staff.review_proof, name="review_proof"),
    path("manage/proofs/<int:proof_id>/file/", views_staff.proof_file, name="proof_file"),
    path("manage/callbacks/", views_staff.callbacks, name="callbacks"),
    path(
        "manage/subscriptions/<int:subscription_id>/run/",
        views_staff.run_subscription,
        name="run_subscription",
    ),
    path("manage/settings/", views_staff.settings_page, name="settings"),
    path("manage/gateways/", views_staff.gateways, name="gateways"),
    path("manage/<slug:kind>/", views_staff.config_list, name="config"),
    path("manage/<slug:kind>/new/", views_staff.config_edit, name="config_new"),
    path("manage/<slug:kind>/<int:pk>/", views_staff.config_edit, name="config_edit"),
]
