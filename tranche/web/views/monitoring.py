"""/metrics for Prometheus: the HTTP counters of every web process and the business
figures read from the database (tranche.core.metrics, tranche.billing.metrics)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import path

from tranche.billing.metrics import BusinessMetrics
from tranche.core.metrics import authorized, exposition


def metrics(request: HttpRequest) -> HttpResponse:
    allowed = authorized(request)
    if allowed is None:
        # No METRICS_TOKEN: the endpoint is off, and says nothing of itself (whatever the
        # method: a 405 would tell it exists).
        raise Http404("No such page.")
    if not allowed:
        response = HttpResponse("A bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return exposition([BusinessMetrics()])


urlpatterns = [path("metrics", metrics, name="metrics")]
