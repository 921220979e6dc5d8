"""Client addresses behind reverse proxies: trust X-Forwarded-* only from TRUSTED_PROXIES hops."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

logger = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Wrap the app in ProxyFix for that many proxies; say at start-up which choice is in force."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies is None:
        level = logging.WARNING if app.config["APP_ENV"] == "production" else logging.INFO
        logger.log(
            level,
            "TRUSTED_PROXIES is not set: client addresses are the socket peer and "
            "X-Forwarded-For is ignored. Behind a reverse proxy set TRUSTED_PROXIES to the "
            "number of proxies (1 for one nginx); set 0 to make this choice explicit.",
        )
        return
    if proxies == 0:
        logger.info("TRUSTED_PROXIES=0: X-Forwarded-For is ignored; clients are socket peers.")
        return
    logger.info("TRUSTED_PROXIES=%d: client addresses come from X-Forwarded-For.", proxies)
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0, x_port=0, x_prefix=0
    )
