from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from factory.middleware import csp_update
from workflows import login_throttle
from workflows.views import notifications as notification_views

# The API docs are third-party single-page apps with relaxations of their own; scripts stay 'self' on both
# (drf-spectacular's split Swagger view serves its start-up script as a file instead of inline).
# Swagger UI draws its icons as data: images. ReDoc styles itself with styled-components (injected
# <style> elements) and builds its search worker from a blob: URL. ReDoc's "by Redocly" logo from
# cdn.redoc.ly stays refused: the docs page contacts no third party.
swagger_csp = csp_update(img_src=["'self'", "data:"])
redoc_csp = csp_update(style_src=["'unsafe-inline'"], img_src=["'self'", "data:"], worker_src=["'self'", "blob:"])


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico whatever the page links: send them to the SVG (its static URL,
    hashed in production, is looked up per request: the manifest may not exist when this module loads)."""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("favicon.svg")


urlpatterns = [
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("accounts/login/", login_throttle.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", login_throttle.admin_login, name="admin-login"),  # before admin.site.urls: throttled
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", swagger_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", redoc_csp(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("api/", include("workflows.api.urls")),
    # The language switcher in the top bar posts to set_language (i18n/setlang/); the browser scripts'
    # strings come from the djangojs catalogue of the active language (gettext() in static/js/).
    # Before Django's own: the switch also sets the language of the signed-in user's e-mails.
    path("i18n/setlang/", notification_views.set_language, name="set_language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("workflows.urls")),
]

handler400 = "workflows.api.errors.bad_request"  # says what was wrong (an upload over its cap, say)
handler404 = "workflows.api.errors.not_found"  # JSON under /api/
