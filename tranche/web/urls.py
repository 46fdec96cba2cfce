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
    monitoring,
    operations,
    projects,
    quotes,
    security,
    two_factor,
    users,
)
from tranche.web.views import settings as settings_views

urlpatterns = [
    path("", home.home, name="home"),
    # Django's form views take PUT as POST; the sign-in page is GET and POST only.
    path("login/", require_http_methods(["GET", "POST"])(auth.LoginView.as_view()), name="login"),
    path("login/code/", auth.login_code, name="login-code"),
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
    *two_factor.urlpatterns,
    *security.urlpatterns,
    *operations.urlpatterns,
    *monitoring.urlpatterns,
]
