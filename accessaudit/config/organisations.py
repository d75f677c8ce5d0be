"""The organisations a directory is split between, and the signals attributing objects to them."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from accessaudit.config.base import STRICT

MATCHER_KINDS: tuple[str, ...] = (
    "ids",
    "employee_id",
    "company",
    "ou",
    "upn_suffix",
    "mail_domain",
    "name_prefix",
    "names",
    "owner",
    "privileged_groups",
    "sources",
    "path_prefix",
    "domain_sid",
)


class _Model(BaseModel):
    model_config = STRICT


class Matchers(_Model):
    """Attribution signals for one organisation; every one that fires is recorded as evidence."""

    ids: list[str] = []  # explicit object ids / SIDs (an override decided by a person)
    employee_id: str | None = None  # regular expression over employeeID
    company: list[str] = []  # exact `company` values (case-insensitive)
    ou: list[str] = []  # DN suffixes (OU subtrees), case-insensitive
    upn_suffix: list[str] = []  # e.g. "@westmercia.police.uk"
    mail_domain: list[str] = []  # e.g. "westmercia.police.uk"
    name_prefix: list[str] = []  # username / group-name prefixes, e.g. "WMP-"
    names: list[str] = []  # exact account usernames or group names
    owner: bool = True  # a group managed by one of this organisation's accounts
    privileged_groups: bool = False  # this organisation hosts the domain's protected groups
    sources: list[str] = []  # groups from these sources (e.g. "csv:niche") belong to this org
    #: resources (folders, shares, mailboxes, Azure scopes) whose path starts with one of these,
    #: case-insensitive: ``\\fs1\wmp$``, ``/subscriptions/<id>/resourceGroups/wmp-``
    path_prefix: list[Annotated[str, Field(min_length=2)]] = []
    #: domain SIDs (S-1-5-21-a-b-c): every SID of those domains, collected or not (an account,
    #: a group, a foreign principal of a domain or trusted forest that is not collected)
    domain_sid: list[Annotated[str, Field(pattern=r"^S-1-5-21-\d{1,10}-\d{1,10}-\d{1,10}$")]] = []

    @field_validator("employee_id")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class Organisation(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    name: str
    match: Matchers = Matchers()


class Attribution(_Model):
    #: Which signal wins when signals disagree (the object is still flagged as conflicting).
    precedence: list[str] = list(MATCHER_KINDS)  # default: the order they are listed in

    @field_validator("precedence")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in MATCHER_KINDS]
        if unknown:
            raise ValueError(f"unknown matcher(s) {unknown}; known: {list(MATCHER_KINDS)}")
        missing = [m for m in MATCHER_KINDS if m not in value]
        return [*value, *missing]
