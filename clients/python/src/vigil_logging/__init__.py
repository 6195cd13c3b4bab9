"""Security events from Python applications to Vigil.

* :class:`VigilHandler` — a :mod:`logging` handler that ships records to Vigil in batches with
  retry, an on-disk spool and idempotency keys (each event stored once).
* OWASP logging vocabulary helpers (:func:`login_fail`, :func:`authz_fail`, …) that return the
  ``extra=`` of a logging call::

    import logging
    from vigil_logging import VigilHandler, login_fail

    log = logging.getLogger("shop.security")
    log.addHandler(VigilHandler("http://127.0.0.1:8080", TOKEN, service="shop",
                                spool_dir="/var/spool/shop-vigil"))
    log.warning("login failed", extra=login_fail("alice", source_ip="203.0.113.5"))
"""

from .handler import Stats, VigilHandler
from .owasp import (
    VOCABULARY,
    admin_change,
    authz_admin,
    authz_fail,
    login_fail,
    login_lock,
    login_success,
    login_success_after_fail,
    privilege_change,
    security_event,
)

__all__ = [
    "VigilHandler",
    "Stats",
    "VOCABULARY",
    "security_event",
    "login_success",
    "login_success_after_fail",
    "login_fail",
    "login_lock",
    "authz_fail",
    "authz_admin",
    "admin_change",
    "privilege_change",
]

__version__ = "0.1.0"
