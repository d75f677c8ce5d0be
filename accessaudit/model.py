"""Canonical tables, enums and well-known identifiers.

Connectors produce the collected tables (:data:`COLLECTED_SCHEMAS`), later stages derive from
them. Schemas explicit; IDs strings (lower-case GUIDs, ``S-1-5-...`` SIDs); times in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")


def _schema(columns: Mapping[str, Any]) -> pl.Schema:
    """A polars Schema (a thin wrapper: polars' stubs reject mixed dtype classes/instances)."""
    return pl.Schema(columns)


class Org(StrEnum):
    """Special organisation labels; real organisations use their configured ids."""

    SHARED = "shared"  # legitimately used by both until a dated split
    UNATTRIBUTED = "unattributed"  # no attribution signal fired


SPECIAL_ORGS: Final = frozenset(o.value for o in Org)


class AccountKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    COMPUTER = "computer"
    GUEST = "guest"


class GroupKind(StrEnum):
    SECURITY = "security"
    DISTRIBUTION = "distribution"
    M365 = "m365"
    APP_ROLE = "app-role"  # an application role (CSV) or an enterprise application (Entra)
    ADMIN_UNIT = "administrative-unit"  # an Entra administrative unit: scopes roles, grants none


class MemberKind(StrEnum):
    ACCOUNT = "account"
    GROUP = "group"
    FOREIGN = "foreign"  # foreign security principal / unresolved SID


class Via(StrEnum):
    MEMBER = "member"  # the group's member attribute
    PRIMARY_GROUP = "primaryGroupID"  # AD primary group: in neither member nor memberOf
    RANGE = "range"  # member values fetched with range retrieval
    GRAPH = "graph"  # Microsoft Graph /members
    CSV = "csv"  # application export
    # an application export's row whose login is disabled there (Inactive, Suspended ...): no
    # access, left out of the expansion, but still held (the rights view shows it)
    CSV_DISABLED = "csv-disabled"
    FOREIGN_PRINCIPAL = "foreign-principal"  # an FSP resolved to another source's object
    SID_HISTORY = "sIDHistory"  # the member's SID is in the account's sIDHistory


class ResourceKind(StrEnum):
    """What a grant gives its principal power over (``grants.resource_kind``)."""

    DIRECTORY_ROLE = "directory-role"
    APP_ROLE = "app-role"
    OWNERSHIP = "ownership"  # managedBy of an AD group, an owner of an Entra group
    # control: the security descriptors of AD objects (``resources`` rows of family ad-object)
    DELEGATION = "delegation"  # an ACE on an AD object: reset password, write member, GenericAll
    OBJECT_OWNER = "object-owner"  # the owner in an AD object's security descriptor
    REPLICATION = "replication"  # DS-Replication-Get-Changes(-All) on a domain head (DCSync)
    # data: what the hosted services hold
    FOLDER = "folder"  # an NTFS ACE on a folder (or file) of an SMB share
    SHARE = "share"  # a share-level permission of an SMB share
    MAILBOX = "mailbox"  # FullAccess, SendAs, SendOnBehalf, a mailbox folder delegation
    AZURE_SCOPE = "azure-scope"  # an Azure RBAC role at a management group/subscription/RG/resource


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; used for ``--fail-on`` and ordering."""
        return SEVERITY_RANK[self]


SEVERITY_RANK: Final[Mapping[Severity, int]] = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class ActionKind(StrEnum):
    """What the identity team does to resolve a finding."""

    REMOVE_MEMBER = "remove-member"  # remove an account from a group
    UNNEST_GROUP = "unnest-group"  # remove a group from a parent group
    SPLIT_GROUP = "split-group"  # a mixed group: clone into one group per organisation
    REMOVE_MEMBERSHIPS = "remove-memberships"  # strip an inactive account's cross access
    REVIEW_ATTRIBUTION = "review-attribution"  # decide which organisation owns the object
    REMOVE_OWNER = "remove-owner"  # clear managedBy / remove an Entra group owner
    REMOVE_ROLE_ASSIGNMENT = "remove-role-assignment"  # an Entra directory role (or eligibility)
    REMOVE_APP_ROLE_ASSIGNMENT = "remove-app-role-assignment"  # an enterprise app's role
    REMOVE_SID_HISTORY = "remove-sid-history"  # one sIDHistory value
    REMOVE_GUEST = "remove-guest"  # delete the other organisation's B2B guest
    DECIDE_SHARED_ACCOUNT = "decide-shared-account"  # split, re-home or retire
    RESOLVE_DUAL_IDENTITY = "resolve-dual-identity"  # one person, accounts in both forces
    DELETE_GROUP = "delete-group"  # an empty group that only links the forces
    CLEAR_MANAGER = "clear-manager"  # manager in the other force
    REVIEW_EXCEPTION = "review-exception"  # renew or remove an exceptions-register entry
    REMOVE_ACE = "remove-ace"  # a trustee's access control entries on an AD object
    CHANGE_OWNER = "change-owner"  # an AD object owned by the other force -> Domain Admins
    REMOVE_FOLDER_ACE = "remove-folder-ace"  # a trustee's entries on a folder or share
    REMOVE_MAILBOX_PERMISSION = "remove-mailbox-permission"  # FullAccess, SendAs, delegation
    REMOVE_AZURE_ROLE_ASSIGNMENT = "remove-azure-role-assignment"  # an Azure RBAC assignment
    QUARANTINE_TRUST = "quarantine-trust"  # turn SID filtering on for a trust (netdom)
    REMOVE_TRUST = "remove-trust"  # remove a trust once the hosted services have moved


# --- Collected tables -------------------------------------------------------------------------

ACCOUNTS_SCHEMA: Final = _schema(
    {
        "source": pl.String,
        "account_id": pl.String,
        "sid": pl.String,
        "username": pl.String,
        "upn": pl.String,
        "display_name": pl.String,
        "mail": pl.String,
        "employee_id": pl.String,
        "company": pl.String,
        "department": pl.String,
        "description": pl.String,
        "dn": pl.String,
        "kind": pl.String,  # AccountKind
        "enabled": pl.Boolean,
        "last_logon": UTC_TIME,
        # the source records the last sign-in/logon of its accounts (AD lastLogonTimestamp,
        # Entra signInActivity, a mapped attribute): only then is a null ``last_logon`` "never
        # signed in" and dormancy known. False or null (a run stored before the column): unknown
        "activity_tracked": pl.Boolean,
        "pwd_last_set": UTC_TIME,
        "created": UTC_TIME,
        "manager_id": pl.String,  # account_id of the manager, when known
        "sid_history": pl.List(pl.String),
        "privileged": pl.Boolean,  # adminCount=1 or a privileged role holder
        # AD account state (null where the source does not know, e.g. generic LDAP, Entra)
        "locked": pl.Boolean,  # locked out now (msDS-User-Account-Control-Computed / lockoutTime)
        "password_not_required": pl.Boolean,  # userAccountControl PASSWD_NOTREQD 0x20
        "password_never_expires": pl.Boolean,  # userAccountControl DONT_EXPIRE_PASSWORD 0x10000
        "password_expired": pl.Boolean,  # msDS-User-Account-Control-Computed 0x800000
        "account_expires": UTC_TIME,  # accountExpires; null when it never expires
        # Entra guests and external members: the domain of their home organisation (from mail,
        # the #EXT# UPN or a federated identity's issuer: connectors/entra/external.py); null
        # for everyone else and where no field names it
        "home_domain": pl.String,
        # Entra service principals: appOwnerOrganizationId, the tenant their application is
        # registered in; null for every other account
        "app_tenant": pl.String,
    }
)

GROUPS_SCHEMA: Final = _schema(
    {
        "source": pl.String,
        "group_id": pl.String,
        "sid": pl.String,
        "name": pl.String,
        "dn": pl.String,
        "description": pl.String,
        "scope": pl.String,  # global / domain-local / universal / builtin / cloud
        "kind": pl.String,  # GroupKind
        "managed_by": pl.String,  # account_id or group_id of managedBy, when known
        "privileged": pl.Boolean,  # a protected group by well-known SID/RID
        "owners": pl.List(pl.String),
        "mastered": pl.String,  # "ad" (change it in AD) or "cloud" (change it through Graph)
        # Entra groups (null where the source does not know: AD, CSV, Graph objects that are not
        # groups). A dynamic group's members come from its rule: no member can be removed.
        "membership_rule": pl.String,  # membershipRule of a dynamic group; null = assigned
        "role_assignable": pl.Boolean,  # isAssignableToRole
        "mail_enabled": pl.Boolean,  # mailEnabled: a non-Microsoft 365 one is Exchange's
    }
)

MEMBERSHIPS_SCHEMA: Final = _schema(
    {
        "source": pl.String,
        "group_id": pl.String,
        "member_id": pl.String,
        "member_kind": pl.String,  # MemberKind
        "via": pl.String,  # Via
    }
)

GRANTS_SCHEMA: Final = _schema(
    {
        "source": pl.String,
        "principal_id": pl.String,  # account_id / group_id, or a SID no collected object holds
        "resource_id": pl.String,  # a role definition, an app, or a ``resources`` row
        "resource_kind": pl.String,  # ResourceKind
        "right": pl.String,
        # access control entries (AD objects, folders, mailboxes): null for role assignments
        "deny": pl.Boolean,  # a deny entry (true) or an allow (false / null)
        "inherited": pl.Boolean,  # the entry is inherited from a parent (ID flag), not set here
        "reach": pl.Int64,  # objects the entry applies to (an OU's subtree, a folder tree); null=1
    }
)

#: Securable objects that grants point at and that are neither groups nor role definitions:
#: AD objects with a security descriptor (their ACEs are control), folders and shares of a file
#: server, mailboxes, Azure scopes (their entries are data). One row per object.
RESOURCES_SCHEMA: Final = _schema(
    {
        "source": pl.String,
        "resource_id": pl.String,  # stable: the AD object's id, "smb://server/share/path", ...
        "family": pl.String,  # "ad-object" | "folder" | "share" | "mailbox" | "azure-scope"
        "object_class": pl.String,  # user, group, organizationalUnit, domainDNS, folder, ...
        "name": pl.String,  # what a person calls it (cn, folder name, mailbox address)
        "path": pl.String,  # dn, UNC path, SMTP address, ARM scope: where it is
        "parent_id": pl.String,  # the resource it sits in (OU, parent folder, subscription)
        # the account or group this resource *is* or belongs to (an AD user object, a shared
        # mailbox's account): the resource takes that object's organisation
        "subject_id": pl.String,
        "owner_sid": pl.String,  # the security descriptor's owner, where there is one
        # false when the descriptor could not be read (no READ_CONTROL): never "no entries"
        "readable": pl.Boolean,
        "linked_to": pl.List(pl.String),  # a GPO's OUs and domains (their gPLink names it)
    }
)

TRUSTS_SCHEMA: Final = _schema(  # an AD domain's trustedDomain objects: docs/rule-views.md
    {
        "source": pl.String,  # the domain holding the trustedDomain object
        "trust_id": pl.String,  # its objectGUID
        "partner": pl.String,  # trustPartner: the other domain's DNS name
        "flat_name": pl.String,  # flatName: its NetBIOS name
        "partner_sid": pl.String,  # securityIdentifier: the other domain's SID
        "direction": pl.String,  # inbound / outbound / bidirectional / disabled
        "trust_type": pl.String,  # downlevel / uplevel / mit / dce
        "attributes": pl.Int64,  # trustAttributes as stored
        "attribute_names": pl.List(pl.String),  # its flags by name (QUARANTINED_DOMAIN ...)
        "transitive": pl.Boolean,  # not NON_TRANSITIVE
        "sid_filtering": pl.Boolean,  # QUARANTINED_DOMAIN, or a forest trust not TREAT_AS_EXTERNAL
    }
)

#: A ``resources`` row's DACL entries in stored order (``seq``), raw facts the analysis resolves
#: into ``grants`` (``analysis.control``): type, flags and mask as stored ([MS-DTYP] 2.4.4).
ACES_SCHEMA: Final = _schema(
    {"source": pl.String, "resource_id": pl.String, "seq": pl.Int32, "ace_type": pl.Int32}
    | {"flags": pl.Int32, "mask": pl.Int64, "object_type": pl.String}
    | {"inherited_object_type": pl.String, "trustee_sid": pl.String}
)

COLLECTED_SCHEMAS: Final[Mapping[str, pl.Schema]] = {
    "accounts": ACCOUNTS_SCHEMA,
    "groups": GROUPS_SCHEMA,
    "memberships": MEMBERSHIPS_SCHEMA,
    "grants": GRANTS_SCHEMA,
    "resources": RESOURCES_SCHEMA,
    "aces": ACES_SCHEMA,
    "trusts": TRUSTS_SCHEMA,
}

# --- Derived tables ---------------------------------------------------------------------------

ORG_COLUMNS: Final = _schema(
    {
        "org": pl.String,
        "org_evidence": pl.List(pl.String),  # "matcher:org" for every matcher that fired
        "org_conflict": pl.Boolean,
    }
)

GROUP_CLOSURE_SCHEMA: Final = _schema(
    {
        "group_id": pl.String,  # the nested (descendant) group
        "ancestor_id": pl.String,  # a group it is, directly or transitively, a member of
        "depth": pl.Int32,  # 1 = direct nesting
        "path": pl.List(pl.String),  # shortest nesting path group_id -> ... -> ancestor_id
    }
)

#: ``via`` as an Enum of the collectors' fixed values: one byte per row.
VIA_ENUM: Final = pl.Enum([v.value for v in Via])

#: Ids as Categorical (UInt32 codes, one dictionary per column): ~70M rows at 1M accounts,
#: where String columns would take four times the memory. Join with Categorical keys.
EFFECTIVE_SCHEMA: Final = _schema(
    {
        "account_id": pl.Categorical(),
        "group_id": pl.Categorical(),
        "depth": pl.Int16,  # 0 = direct member
        "via_group_id": pl.Categorical(),  # the direct group through which group_id is reached
        "via": VIA_ENUM,  # how the direct edge was collected (member / primaryGroupID ...)
    }
)

FINDINGS_SCHEMA: Final = _schema(
    {
        "finding_key": pl.String,  # stable across runs: rule id + stable object ids
        "rule_id": pl.String,
        "severity": pl.String,
        "title": pl.String,
        "action": pl.String,  # ActionKind
        "account_id": pl.String,
        "group_id": pl.String,
        "member_group_id": pl.String,  # the nested child group, for group findings
        "via_group_id": pl.String,  # direct group an account reaches group_id through
        "resource_id": pl.String,  # a non-group resource: role definition, app, SID, account
        "right": pl.String,  # the right held on it ("Global Administrator @ /", "App: Role")
        "depth": pl.Int32,
        "principal_org": pl.String,
        "resource_org": pl.String,
        "detail": pl.String,  # short human text built by the rule query
    }
)

ACTIONS_SCHEMA: Final = _schema(
    {
        "action_id": pl.String,  # stable: kind + target ids
        "kind": pl.String,  # ActionKind
        "severity": pl.String,  # worst severity among the findings it resolves
        "group_id": pl.String,  # the group changed (or split)
        "member_id": pl.String,  # the account or group removed
        "member_kind": pl.String,
        "resource_id": pl.String,  # role definition / app / SID / account the action is about
        "right": pl.String,  # the right removed (role @ scope, app role, SID)
        "system": pl.String,  # where to change it: ad / cloud (Entra, Graph) / app / register
        "owning_org": pl.String,  # organisation that owns the changed object
        "resolves": pl.Int64,  # number of findings this action resolves
        "finding_keys": pl.List(pl.String),
        "summary": pl.String,
        "powershell": pl.String,
        "graph": pl.String,  # Microsoft Graph request(s) for Entra changes, else null
        # null: ``apply`` executes it; else why it is left to a person (apply's manual_reason)
        "apply": pl.String,
    }
)

# --- Well-known identifiers -------------------------------------------------------------------

#: RIDs of domain groups Microsoft documents as privileged / protected by AdminSDHolder ("Appendix
#: B", learn.microsoft.com/windows-server/identity/ad-ds/plan/security-best-practices).
PRIVILEGED_DOMAIN_RIDS: Final[Mapping[int, str]] = {
    512: "Domain Admins",
    516: "Domain Controllers",
    518: "Schema Admins",
    519: "Enterprise Admins",
    520: "Group Policy Creator Owners",
    526: "Key Admins",
    527: "Enterprise Key Admins",
}

#: Builtin-domain aliases (S-1-5-32-RID) that are privileged.
PRIVILEGED_BUILTIN_RIDS: Final[Mapping[int, str]] = {
    544: "Administrators",
    548: "Account Operators",
    549: "Server Operators",
    550: "Print Operators",
    551: "Backup Operators",
    552: "Replicator",
}

#: Well-known domain RIDs that are not privileged but matter for primary groups.
DOMAIN_USERS_RID: Final = 513
DOMAIN_GUESTS_RID: Final = 514
DOMAIN_COMPUTERS_RID: Final = 515


def is_privileged_sid(sid: str | None) -> bool:
    """True for SIDs of protected groups, matched by RID, never by (localised) name."""
    if not sid:
        return False
    head, _, rid_text = sid.rpartition("-")
    if not rid_text.isdigit():
        return False
    rid = int(rid_text)
    if head == "S-1-5-32":
        return rid in PRIVILEGED_BUILTIN_RIDS
    return head.startswith("S-1-5-21-") and rid in PRIVILEGED_DOMAIN_RIDS


def privileged_sid_expr(column: str = "sid") -> pl.Expr:
    """Vectorised :func:`is_privileged_sid` for polars."""
    sid = pl.col(column)
    rid = sid.str.extract(r"-(\d+)$", 1).cast(pl.Int64, strict=False)
    builtin = sid.str.starts_with("S-1-5-32-") & rid.is_in(list(PRIVILEGED_BUILTIN_RIDS))
    domain = sid.str.starts_with("S-1-5-21-") & rid.is_in(list(PRIVILEGED_DOMAIN_RIDS))
    return (builtin | domain).fill_null(False)


#: A domain name as mail and sign-in use it: dotted labels of letters, digits and hyphens.
DOMAIN_PATTERN: Final = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"


def ext_home_domain(column: str = "upn") -> pl.Expr:
    """The home domain an Entra B2B user principal name carries, lower-cased; null without one.

    Entra makes a B2B user's UPN from its home address with ``@`` replaced by ``_`` and
    ``#EXT#@<tenant domain>`` appended (``jane_doe_warwickshire.police.uk#EXT#@x.onmicrosoft.com``
    for ``jane_doe@warwickshire.police.uk``: learn.microsoft.com/entra/external-id/
    user-properties). The domain is the text between the **last** ``_`` and ``#EXT#``: the
    local part may hold ``_``, a domain name never does (host names are letters, digits, hyphens
    and dots: RFC 1123). The pattern cannot match across a ``_``, so the match that ends at
    ``#EXT#`` starts after the last one."""
    return pl.col(column).str.to_lowercase().str.extract(rf"_({DOMAIN_PATTERN})#ext#@[^@]*$", 1)


def empty(schema: pl.Schema) -> pl.DataFrame:
    """An empty frame with exactly ``schema``."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Return ``df`` with exactly the columns of ``schema``, in order, cast strictly.

    Missing columns are added as nulls; extra columns are an error (a connector bug).
    """
    extra = set(df.columns) - set(schema.names())
    if extra:
        raise ValueError(f"unexpected columns {sorted(extra)}")
    return df.select(
        [
            pl.col(name).cast(dtype, strict=True)
            if name in df.columns
            else pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


# --- What a connector returns -----------------------------------------------------------------


@dataclass(frozen=True)
class CollectionUnit:
    """One provable piece of a collection (e.g. "users", "members of group X", "groups").

    ``complete`` is True only with a proof (``detail``: "paged cookie exhausted",
    "range ended in -*", "no @odata.nextLink"); otherwise ``detail`` says what went wrong.
    """

    name: str
    complete: bool
    detail: str
    count: int = 0


#: The signal a source records the last sign-in or logon of its accounts (``activity_tracked``).
LAST_LOGON: Final = "last_logon"


@dataclass(frozen=True)
class Signal:
    """Whether a source records one kind of evidence (e.g. :data:`LAST_LOGON`), and where it
    comes from or why it is missing (``detail``)."""

    recorded: bool
    detail: str


@dataclass
class SourceCollection:
    """Everything one source yielded: the four canonical tables plus completeness."""

    source: str  # e.g. "ad:alliance.local", "entra:<tenant-id>", "csv:niche"
    kind: str  # "ldap" | "entra" | "csv" | "sample"
    started: datetime
    finished: datetime
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    units: list[CollectionUnit] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)  # e.g. Graph delta links, per source
    signals: dict[str, Signal] = field(default_factory=dict)  # e.g. {LAST_LOGON: Signal(...)}

    @property
    def complete(self) -> bool:
        return all(u.complete for u in self.units)

    def table(self, name: str) -> pl.DataFrame:
        """The named canonical table, conformed to its schema (empty if not collected)."""
        schema = COLLECTED_SCHEMAS[name]
        df = self.tables.get(name)
        return empty(schema) if df is None else conform(df, schema)
