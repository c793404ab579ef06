from django.urls import path

from otomat.projects.offers import views, views_client

app_name = "offers"
urlpatterns = [
    # The owner and staff.
    path("", views.offer_list, name="list"),
    path("new/", views.offer_new, name="new"),
    path("from-estimate/<int:estimate_id>/", views.offer_from_estimate, name="from_estimate"),
    path("<int:pk>/", views.offer_detail, name="detail"),
    path("<int:pk>/edit/", views.offer_edit, name="edit"),
    path("<int:pk>/send/", views.offer_send, name="send"),
    path("<int:pk>/withdraw/", views.offer_withdraw, name="withdraw"),
    path("<int:pk>/contract.pdf", views.staff_pdf, name="staff_pdf"),
    path(
        "<int:pk>/milestones/<int:milestone_id>/done/",
        views.milestone_done,
        name="milestone_done",
    ),
    path("<int:pk>/release/", views.release_invoice, name="release"),
    path("contract-templates/", views.templates, name="templates"),
    # The client.
    path("mine/", views_client.mine, name="mine"),
    path("mine/<str:number>/", views_client.mine_detail, name="mine_detail"),
    path("o/<str:token>/", views_client.offer_page, name="client_offer"),
    path("o/<str:token>/accept/", views_client.accept, name="client_accept"),
    path("o/<str:token>/decline/", views_client.decline, name="client_decline"),
    path("o/<str:token>/contract/", views_client.contract_page, name="client_contract"),
    path("o/<str:token>/contract.pdf", views_client.contract_pdf, name="client_pdf"),
    path("o/<str:token>/certificate/", views_client.certificate, name="certificate"),
]
