from django.urls import path

from otomat.projects.board import views

app_name = "board"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("workshop/", views.workshop_view, name="workshop"),
    path("new/", views.project_new, name="new"),
    path("from-offer/<int:offer_id>/", views.project_from_offer, name="from_offer"),
    path("<int:project_id>/", views.project_detail, name="project"),
    path("<int:project_id>/cards/", views.card_add, name="card_add"),
    path("<int:project_id>/milestones/", views.milestone_add, name="milestone_add"),
    path("<int:project_id>/release/", views.release_new, name="release_new"),
    path("<int:project_id>/finish/", views.project_finish, name="finish"),
    path("<int:project_id>/product/", views.project_product, name="product"),
    path("releases/<int:release_id>/<str:action>/", views.release_action, name="release_action"),
    path("cards/<int:card_id>/", views.card_detail, name="card"),
    path("cards/<int:card_id>/comment/", views.card_comment, name="comment"),
    path("cards/<int:card_id>/accept/", views.card_accept, name="accept"),
    path("cards/<int:card_id>/change/", views.card_change, name="change"),
    path("cards/<int:card_id>/edit/", views.card_edit, name="card_edit"),
    path("cards/<int:card_id>/status/", views.card_status, name="status"),
    path("cards/<int:card_id>/move/", views.card_move, name="move"),
    path("cards/<int:card_id>/time/", views.card_time, name="time"),
    path("cards/<int:card_id>/quote/", views.revision_quote, name="quote"),
]
