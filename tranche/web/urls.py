from django.contrib.auth import views as auth_views
from django.urls import path

from tranche.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", authentication_form=views.LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("financials/", views.financials, name="financials"),
    path("projects/<int:project_id>/", views.project, name="project"),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/complete",
        views.complete_milestone,
        name="milestone-complete",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/reopen",
        views.reopen_milestone,
        name="milestone-reopen",
    ),
    path("invoices/<int:invoice_id>/send", views.send_invoice, name="invoice-send"),
]
