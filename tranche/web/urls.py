"""Every page's address. Each concern's module under `views/` lists its own routes; this
file only puts them together."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.decorators.http import require_http_methods

from tranche.web.views import (
    account,
    auth,
    change_orders,
    credit_notes,
    customers,
    financials,
    home,
    invoices,
    projects,
    quotes,
    users,
)
from tranche.web.views import settings as settings_views

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "login/",
        # Django's form views take PUT as POST; the sign-in page is GET and POST only.
        require_http_methods(["GET", "POST"])(
            auth_views.LoginView.as_view(
                template_name="web/login.html", authentication_form=auth.LoginForm
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    *projects.urlpatterns,
    *change_orders.urlpatterns,
    *financials.urlpatterns,
    *invoices.urlpatterns,
    *credit_notes.urlpatterns,
    *quotes.urlpatterns,
    *customers.urlpatterns,
    *users.urlpatterns,
    *settings_views.urlpatterns,
    *account.urlpatterns,
]
