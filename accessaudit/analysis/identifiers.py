"""Identities as application exports write them, normalised the same way on both sides.

Application admins export logins and staff numbers in the shapes their system keeps, not the
directory's. Two normalisations make them comparable; both are polars expressions applied
alike to the export's value and to the directory's, so a value is never rewritten in the
tables, only compared through its key.

**Staff numbers** (:func:`~accessaudit.idkeys.employee_id_key`, shared with the views so that they
read them alike): every whitespace character is removed (spaces, tabs, non-breaking spaces:
``" 2000 146\\u00a0"``), the result is lower-cased, and an id made of ASCII digits only loses
its leading zeros (``02000146`` and ``0002000146`` are ``2000146``; an
all-zero id is ``0``). Ids with letters keep their zeros (``WM00146`` stays ``wm00146``): a
prefix makes the digits a code, not a number. Empty -> null (a null key never matches).

**Logins** (:func:`login_keys`): a login in the down-level form ``DOMAIN\\user``
(``ALLIANCE\\achen1428``) or written as ``user@domain`` is matched by its user part, but only
when its domain is one of the accepted domains (compared case-insensitively). The login is
compared as written too, so a directory whose usernames are themselves ``user@domain`` still
matches. A qualified login of another domain keeps only its verbatim key:
``OTHER\\achen1428`` never becomes ``achen1428``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

from accessaudit.idkeys import employee_id_key

__all__ = [
    "directory_domains",
    "employee_id_key",
    "login_domain",
    "login_keys",
    "login_user",
    "text_key",
]
#: ``DOMAIN\user``: the domain is everything before the first backslash.
_DOWN_LEVEL: Final = r"^([^\\]+)\\(.+)$"
#: ``user@domain``: the domain is everything after the last ``@``.
_AT_DOMAIN: Final = r"^(.+)@([^@]+)$"


def text_key(expr: pl.Expr) -> pl.Expr:
    """Trimmed, lower-cased; empty -> null (a null key never joins)."""
    norm = expr.str.strip_chars().str.to_lowercase()
    return pl.when(norm != "").then(norm).otherwise(None)


def login_domain(expr: pl.Expr) -> pl.Expr:
    """The domain part of a ``DOMAIN\\user`` or ``user@domain`` login, lower-cased; null for a
    bare login."""
    login = expr.str.strip_chars()
    return pl.coalesce(
        login.str.extract(_DOWN_LEVEL, 1), login.str.extract(_AT_DOMAIN, 2)
    ).str.to_lowercase()


def login_user(expr: pl.Expr) -> pl.Expr:
    """The user part of a ``DOMAIN\\user`` or ``user@domain`` login; null for a bare login."""
    login = expr.str.strip_chars()
    return pl.coalesce(login.str.extract(_DOWN_LEVEL, 2), login.str.extract(_AT_DOMAIN, 1))


def login_keys(expr: pl.Expr, domains: Iterable[str]) -> pl.Expr:
    """The keys a login is compared by, as a list: the login as written (:func:`text_key`), and
    its user part when it names one of ``domains`` (a down-level name such as ``alliance`` or a
    DNS name such as ``alliance.local``)."""
    accepted = sorted({d.strip().lower() for d in domains if d.strip()})
    user = text_key(login_user(expr))
    in_domain = login_domain(expr).is_in(accepted).fill_null(False)
    qualified = pl.when(in_domain).then(user).otherwise(None)
    return pl.concat_list(text_key(expr), qualified).list.drop_nulls().list.unique()


def directory_domains(sources: Iterable[str]) -> list[str]:
    """The domains a login may name when a source configures none: each Active Directory
    source's DNS name (``ad:alliance.local``) and its first label (``alliance``: the NetBIOS
    name Windows proposes for a new domain; a domain whose NetBIOS name differs must be
    configured)."""
    out: set[str] = set()
    for source in sources:
        kind, _, name = source.partition(":")
        if kind == "ad" and name:
            out.update({name.lower(), name.lower().split(".", 1)[0]})
    return sorted(out)
