"""The home page: staff see the dashboard, a customer sees her own summary."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tranche.web.views.common import user_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    return render(request, "web/home.html", {"customer_view": user.is_customer})
