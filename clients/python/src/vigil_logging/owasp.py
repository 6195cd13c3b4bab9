"""The OWASP logging vocabulary as ECS fields, the same table as Vigil's Rust client.

Each helper returns an ``extra`` mapping for the standard :mod:`logging` calls::

    log.warning("login failed", extra=login_fail("alice", source_ip="203.0.113.5"))

:class:`vigil_logging.VigilHandler` turns the record into an event with these fields:

``event.action``   the OWASP name (``authn_login_fail``)
``event.code``     the OWASP event string (``authn_login_fail:alice``)
``event.category``, ``event.type``, ``event.outcome``  ECS values of the vocabulary
``log.level``      the cheat sheet's level (``info``, ``warn``, ``critical``)
``event.severity`` 1, 3 or 5 (OCSF severity of that level)
``user.name``      the actor, when there is one

The table is ``vocabulary.json`` beside this file; a test of the Rust client checks that it is
the table the Rust client uses.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Mapping, Optional

#: The key of the ECS fields in a record's ``extra``.
EXTRA_KEY = "vigil_event"

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "vocabulary.json"), encoding="utf-8") as _f:
    VOCABULARY: Dict[str, Dict[str, str]] = {v["name"]: v for v in json.load(_f)}

_SEVERITY = {"info": 1, "warn": 3, "critical": 5}

#: Keyword arguments of the helpers and the ECS field each sets.
BUILDER_FIELDS = {
    "source_ip": "source.ip",
    "user_agent": "user_agent.original",
    "url_path": "url.path",
    "http_method": "http.request.method",
    "service": "service.name",
    "host": "host.name",
    "reason": "event.reason",
}


def security_event(
    name: str,
    actor: Optional[str] = None,
    args: Iterable[str] = (),
    fields: Optional[Mapping[str, Any]] = None,
    **builder: Any,
) -> Dict[str, Dict[str, Any]]:
    """The ``extra`` of an event of vocabulary ``name`` (known or not).

    ``actor`` goes to ``user.name``; ``args`` are the OWASP arguments after the actor;
    ``fields`` are any other ECS fields by their dotted names; the keyword arguments are those
    of :data:`BUILDER_FIELDS` (``source_ip=…``, ``url_path=…``).
    """
    event: Dict[str, Any] = {"event.kind": "event", "event.action": name}
    parts = ([actor] if actor else []) + [str(a) for a in args]
    if parts:
        event["event.code"] = name + ":" + ",".join(parts)
    else:
        event["event.code"] = name
    spec = VOCABULARY.get(name)
    if spec is not None:
        event["event.category"] = spec["category"]
        event["event.type"] = spec["type"]
        if spec["outcome"] != "unknown":
            event["event.outcome"] = spec["outcome"]
        event["log.level"] = spec["level"]
        event["event.severity"] = _SEVERITY[spec["level"]]
    if actor:
        event["user.name"] = actor
    for key, value in builder.items():
        if key not in BUILDER_FIELDS:
            raise TypeError("unknown field %r; use fields={'ecs.name': value}" % key)
        if value is not None:
            event[BUILDER_FIELDS[key]] = str(value)
    for key, value in (fields or {}).items():
        event[key] = value
    return {EXTRA_KEY: event}


def login_success(user: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authn_login_success:user`` — a successful login."""
    return security_event("authn_login_success", user, **kw)


def login_success_after_fail(user: str, retries: int, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authn_login_successafterfail:user,retries`` — a login that succeeded after failures."""
    return security_event("authn_login_successafterfail", user, [str(retries)], **kw)


def login_fail(user: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authn_login_fail:user`` — a failed login."""
    return security_event("authn_login_fail", user, **kw)


def login_lock(user: str, reason: str = "maxretries", **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authn_login_lock:user,reason`` — an account was locked."""
    return security_event("authn_login_lock", user, [reason], **kw)


def authz_fail(user: str, resource: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authz_fail:user,resource`` — access to a resource was refused."""
    extra = security_event("authz_fail", user, [resource], **kw)
    extra[EXTRA_KEY].setdefault("url.path", resource)
    return extra


def authz_admin(user: str, event: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``authz_admin:user,event`` — an administrative action by ``user``."""
    return security_event("authz_admin", user, [event], **kw)


def admin_change(admin: str, target_user: str, change: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``user_updated:admin,target,change`` — an administrator changed another account."""
    extra = security_event("user_updated", admin, [target_user, change], **kw)
    extra[EXTRA_KEY]["user.target.name"] = target_user
    return extra


def privilege_change(admin: str, target: str, from_level: str, to_level: str, **kw: Any) -> Dict[str, Dict[str, Any]]:
    """``privilege_permissions_changed:admin,target,from,to``."""
    extra = security_event("privilege_permissions_changed", admin, [target, from_level, to_level], **kw)
    extra[EXTRA_KEY]["user.target.name"] = target
    return extra
