"""Reflex configuration; every value comes from cf_portal.settings (see the README's Configuration)."""

import reflex as rx
from reflex.environment import environment

from cf_portal.frontend import PortalThemePlugin
from cf_portal.settings import get_settings

settings = get_settings()
# Behind a reverse proxy the browser reaches the backend at the public address (CF_PUBLIC_URL); unset, Reflex's
# default (this machine, on the port the portal serves) stands.
public_address = {"api_url": settings.public_url, "deploy_url": settings.public_url} if settings.public_url else {}
# A backend-only process (`python -m cf_portal.serve --no-build`, serving a build made by another) has no frontend
# port: Reflex refuses to start backend-only when the config names one.
frontend_port = None if environment.REFLEX_BACKEND_ONLY.get() else settings.port

config = rx.Config(
    app_name="cf_portal",
    db_url=settings.database_url,
    redis_url=settings.redis_url,
    frontend_port=frontend_port,
    backend_port=settings.port,
    trusted_proxy_hops=settings.trusted_proxy_hops,  # the client's address from X-Forwarded-For
    cors_allowed_origins=settings.origins,  # not Reflex's "*": only the portal's own pages
    **public_address,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    default_color_mode="light",
    # Radix Themes, light only, without what no page uses, and one vendor chunk (cf_portal/frontend.py).
    plugins=[PortalThemePlugin(accent="indigo", radius="medium")],
    # Libraries Reflex exposes to dynamic components (Radix Themes whole, ...) load only if one is evaluated; the
    # portal has none, so a page downloads only the components it renders.
    frontend_lazy_bundled_libraries=True,
    # The build's files are compressed once at build; the server picks the file the browser accepts.
    frontend_compression_formats=["brotli", "gzip"],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
