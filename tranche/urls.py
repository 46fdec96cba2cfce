from django.conf import settings
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from tranche.api import api
from tranche.billing import views as billing_views
from tranche.core.admin import operations_site
from tranche.web.views.errors import api_not_found

urlpatterns = [
    path("api/", api.urls),
    # Anything else under /api/ answers in JSON too, never with an HTML page.
    re_path(r"^api/", api_not_found),
    path("admin/", operations_site.urls),
    path("pay/<str:token>", billing_views.pay, name="pay"),
    path("pay/<str:token>/done", billing_views.pay_done, name="pay-done"),
    path("pay/<str:token>/invoice.pdf", billing_views.pay_document, name="pay-document"),
    path("pay/<str:token>/receipt.pdf", billing_views.pay_receipt, name="pay-receipt"),
    # Browsers and feed readers ask for /favicon.ico whatever the page's <link> says.
    path(
        "favicon.ico",
        RedirectView.as_view(url=f"{settings.STATIC_URL}web/favicon.svg", permanent=True),
        name="favicon",
    ),
    path("", include("tranche.web.urls")),
]

handler400 = "tranche.core.http.bad_request"
handler403 = "tranche.core.http.permission_denied"
handler404 = "tranche.core.http.page_not_found"
handler500 = "tranche.core.http.server_error"
