"""Every page's address. Each concern's module under `views/` lists its own routes; this
file only puts them together."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tranche.web.views import auth, financials, home, projects, quotes

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", authentication_form=auth.LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    *projects.urlpatterns,
    *financials.urlpatterns,
    *quotes.urlpatterns,
]
