"""What each view a rule query sees means, for rule authors.

One :class:`ViewDoc` per view, in the order :func:`accessaudit.engine.views.build_views` returns
them. Only the meaning is written here: :mod:`accessaudit.engine.viewdoc` takes each view's
columns and their polars types from the views themselves (built over empty tables) and renders
``docs/rule-views.md``; it refuses a note about a column the view does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from accessaudit.model import (
    AccountKind,
    GroupKind,
    MemberKind,
    ResourceKind,
    Via,
)


def one_of(enum: type[StrEnum]) -> str:
    """The values a column of this enum holds, as the notes list them."""
    return "one of " + ", ".join(f"`{v.value}`" for v in enum)


#: What every view shares: said once, above the views.
INTRO = """\
A rule's `query` is polars SQL over these views. They are lazy, built once per run over the
attributed tables and shared by every rule, so a rule pays only for the views it reads.

`*_org` columns hold an organisation id, `shared` or `unattributed`; `*_real` is true for a real
organisation (neither of those two). `cross` is true where a row ties two different real
organisations; each view says what exactly it compares. A column named after an object
(`account_kind`, `group_privileged`, `principal_org`, `owner_type` ...) is that object's column
of the same name in `accounts` or `groups`. Ids are the immutable ones (objectGUID, Entra object
id, SID), never a DN or a name; times are UTC."""

_ORG = "the organisation the attribution chose: the first firing matcher in precedence order"
_ORG_EVIDENCE = '"matcher:org" for every matcher that fired'
_ORG_CONFLICT = "matchers of two or more organisations fired (a mover or a mislabelled object)"
#: An id in both tables is an Entra service principal that is a principal and an application.
_PRINCIPAL_TYPE = (
    "`account` or `group` (a service principal that is also an application: `account`)"
)


#: The collected accounts' columns whose meaning is not in their name.
_ACCOUNT_COLUMNS = {
    "account_id": "objectGUID, Entra object id, or the export's id",
    "sid": "objectSid (an Entra user synced from AD: the AD account's)",
    "kind": one_of(AccountKind) + " (`service`: an Entra service principal that is a member, "
    "an owner or holds a role)",
    "manager_id": "the manager's `account_id`, when known",
    "sid_history": "sIDHistory: SIDs the account carried in other domains",
    "privileged": "adminCount=1 or a privileged role holder",
    "locked": "locked out now (null where the source does not know)",
    "password_not_required": "userAccountControl PASSWD_NOTREQD",
    "password_never_expires": "userAccountControl DONT_EXPIRE_PASSWORD",
    "password_expired": "msDS-User-Account-Control-Computed PASSWORD_EXPIRED",
    "account_expires": "accountExpires; null when it never expires",
    "activity_tracked": "the source records sign-ins (AD lastLogonTimestamp; Entra "
    "signInActivity, read only with sign_in_activity = true and Entra ID P1; a mapped "
    'last-logon attribute): only then is a null `last_logon` "never signed in"; false or '
    "null: unknown",
    "home_domain": "an Entra guest's or external member's home domain (from its mail, its #EXT# "
    "UPN or its federated identity's issuer); null for everyone else",
    "app_tenant": "an Entra service principal's appOwnerOrganizationId: the tenant its "
    "application is registered in",
}

#: The collected groups' columns whose meaning is not in their name.
_GROUP_COLUMNS = {
    "scope": "`global`, `domain-local`, `universal`, `builtin` or `cloud`",
    "kind": one_of(GroupKind),
    "managed_by": "managedBy: an `account_id` or `group_id`, when known",
    "privileged": "a protected group by well-known SID or RID",
    "owners": "Entra owners (ids)",
    "mastered": "`ad` (change it in AD) or `cloud` (change it through Graph)",
    "membership_rule": "a dynamic group's membershipRule (null: assigned members); its members "
    "cannot be removed",
    "role_assignable": "isAssignableToRole",
    "mail_enabled": "mailEnabled",
}


@dataclass(frozen=True)
class ViewDoc:
    """One view: its name, what it is for, what a row means and notes on its columns."""

    name: str
    purpose: str  # one line
    row: str = ""  # what one row is, and what is left out
    columns: Mapping[str, str] = field(default_factory=dict)  # column -> meaning


VIEWS: tuple[ViewDoc, ...] = (
    ViewDoc(
        "accounts",
        "The collected accounts with their organisation and identity.",
        "One row per collected account (AD, Entra or an application's export).",
        {
            **_ACCOUNT_COLUMNS,
            "org": _ORG,
            "org_evidence": _ORG_EVIDENCE,
            "org_conflict": _ORG_CONFLICT,
            "real_org": "`org` is a real organisation",
            "days_since_active": "days from the run's start to the last logon (to the creation "
            "when it never logged on); null (unknown) when the source does not record sign-ins "
            "(`activity_tracked` not true) or neither time is known: a comparison with null is "
            "never true, so no rule calls such an account dormant",
            "identity_id": "the AD account an Entra synced copy belongs to (by SID), else the "
            "account itself",
            "synced_copy": "an Entra user synced from an AD account: rules about people look at "
            "the AD account's row",
        },
    ),
    ViewDoc(
        "groups",
        "The collected groups with their organisation and direct member count.",
        "One row per collected group, enterprise application or administrative unit.",
        {
            **_GROUP_COLUMNS,
            "org": _ORG,
            "org_evidence": _ORG_EVIDENCE,
            "org_conflict": _ORG_CONFLICT,
            "real_org": "`org` is a real organisation",
            "members": "its direct members: its rows in `memberships`",
        },
    ),
    ViewDoc(
        "memberships",
        "Direct memberships as collected.",
        "One row per (group, direct member).",
        {
            "member_kind": one_of(MemberKind) + " (Entra service principals are `account`; "
            "devices and org contacts `foreign`: attributed to no one)",
            "via": "how the edge was collected: " + one_of(Via),
        },
    ),
    ViewDoc(
        "nestings",
        "Direct group-in-group edges with both groups' organisations.",
        "One row per group that is a direct member of another group. An administrative unit "
        "holding a group is not a nesting.",
        {"parent_id": "the group holding the member", "child_id": "the member group"},
    ),
    ViewDoc(
        "access",
        "Effective memberships: every group an account is in, directly or through nesting.",
        "One row per (account, group) with both sides' organisations. Administrative units are "
        "not groups one has access through: left out, and so are memberships through a login "
        "its application has disabled (`via` `csv-disabled`: see `rights`).",
        {
            "depth": "0 = direct member",
            "via_group_id": "the direct group through which `group_id` is reached",
            "via": "how that direct edge was collected: " + one_of(Via),
            "days_since_active": "the account's (see `accounts`)",
            "cross": "the account and the group belong to different real organisations",
        },
    ),
    ViewDoc(
        "composition",
        "Per group, its direct account members by organisation and where the group is used.",
        "One row per group (not an administrative unit) with at least one direct member that is "
        "an account of a real organisation.",
        {
            "members": "its direct members that are accounts of a real organisation",
            "own": "those of the group's organisation",
            "other": "those of another organisation",
            "other_share": "`other / members`",
            "parents": "groups it is nested in",
            "app_roles": "app-role assignments it holds",
            "roles": "directory roles it holds",
        },
    ),
    ViewDoc(
        "closure",
        "Group nesting, transitively.",
        "One row per (group, ancestor).",
        {
            "group_id": "the nested (descendant) group",
            "ancestor_id": "a group it is, directly or transitively, a member of",
            "depth": "1 = direct nesting",
        },
    ),
    ViewDoc(
        "grants",
        "Rights other than memberships, as collected.",
        "One row per (principal, resource, right).",
        {"resource_kind": one_of(ResourceKind)},
    ),
    ViewDoc(
        "role_grants",
        "Entra directory roles: assignments and PIM eligibility.",
        "One row per (principal, role, scope). The connector's `right` is "
        "`<role> @ <directoryScopeId>`, or `<role> @ <directoryScopeId> (eligible)` for an "
        "eligibility.",
        {
            "principal_type": _PRINCIPAL_TYPE,
            "resource_id": "the role definition",
            "role_name": "the role's name",
            "scope": "the directoryScopeId: `/` for the whole tenant",
            "scope_id": "the administrative unit or application the role is scoped to (null for "
            "the tenant)",
            "scope_org": "the scope object's organisation",
            "scope_kind": "the scope object's kind",
            "scope_name": "the scope object's name",
            "source": "the tenant the role is in (`entra:<tenant id>`)",
            "eligible": "a PIM eligibility rather than an active assignment",
            "reach_org": "the other organisation a scoped role reaches: the scope object's own, "
            "or that of a member object (an account, a group) of the administrative unit it is "
            "scoped to; devices and org contacts are attributed to no one (null if none)",
            "reach_via_scope": "`reach_org` is the scope object's own organisation",
            "reach_object_type": "the administrative unit's member the role reaches: `account` or "
            "`group` (null when reached through the scope object itself)",
            "reach_object_id": "that member's id (the first, by organisation, type and name)",
            "reach_object_name": "that member's name (UPN or username; a group's name)",
            "reach_objects": "how many of the unit's member objects belong to an organisation "
            "other than the principal's",
            "host_org": "the organisation the configuration declares hosts the tenant (the "
            "source's `host`; null when none is declared)",
            "host_known": "`host_org` is declared",
            "resource_org": "`host_org` for the tenant scope `/`; else `reach_org`, or the scope "
            "object's organisation",
            "cross": "a tenant-wide role held outside the declared host organisation (or by "
            "anyone when no host is declared), or a scoped role reaching another organisation",
        },
    ),
    ViewDoc(
        "app_grants",
        "Enterprise applications' app-role assignments.",
        "One row per (principal, application, right); `right` is `<app>: <role>`.",
        {
            "principal_type": _PRINCIPAL_TYPE,
            "resource_id": "the enterprise application",
            "role": "the app role's name",
            "app_name": "the application's name",
            "app_org": "the application's own organisation: its `groups` row (kind `app-role`) "
            "is attributed like any group",
            "cross": "the holder and the application belong to different real organisations",
        },
    ),
    ViewDoc(
        "owners",
        "Who owns each group: managedBy, Entra owners and ownership grants.",
        "One row per (group, owner).",
        {
            "via": "`managedBy` or `owner`",
            "mastered": "the group's: `ad` or `cloud`",
            "owner_type": _PRINCIPAL_TYPE + " (null when the owner was not collected)",
            "cross": "the owner and the group belong to different real organisations",
        },
    ),
    ViewDoc(
        "rights",
        "Everything an account reaches: groups, directory roles and app roles.",
        "One row per (account, right). Groups at any depth; directory roles held directly or "
        "through a group at any depth; app roles assigned directly or to a group the account is "
        'a direct member of (Graph: "direct members of the group are also considered to have '
        'been assigned the role"). A membership through a login its application has disabled '
        "(`via` `csv-disabled`) gives no access and is in no other access view; it is here "
        "with `right_enabled` false.",
        {
            "right_kind": "`membership`, `directory-role` or `app-role`",
            "resource_id": "the group, role definition or enterprise application",
            "days_since_active": "the account's (see `accounts`)",
            "cross": "the account and the resource belong to different real organisations",
            "right_enabled": "false for a membership held through a login its application "
            "has disabled (an export's `enabled` column); true otherwise",
        },
    ),
    ViewDoc(
        "sid_history",
        "The sIDHistory values accounts carry and whose SID each one is.",
        "One row per sIDHistory value of an account (synced copies left out).",
        {
            "history_sid": "the sIDHistory value",
            "domain": "its domain part (the SID without the RID)",
            "target_id": "the collected object with that SID (null if none)",
            "target_type": "`account` or `group`",
            "target_org": "that object's organisation; for a SID of a domain that no longer "
            "exists, the organisation whose accounts carry most of that domain's SIDs",
            "domain_org": "the organisation whose accounts carry most of the domain's "
            "unresolved SIDs (null if none or tied)",
            "resolved": "an object with that SID was collected",
            "target_privileged": "the SID's RID is a protected one",
            "cross": "the account and the target belong to different real organisations",
        },
    ),
    ViewDoc(
        "identity_pairs",
        "Two identities that are one person.",
        "One row per pair of identities sharing an employee id (compared without spaces and, "
        "when all digits, without leading zeros), a mail address, or one's "
        "sIDHistory holding the other's SID. An Entra synced copy is the same identity as its AD "
        "account, not a pair.",
        {
            "account_id": "the first identity (`account_id < other_id`)",
            "other_id": "the second identity",
            "links": 'what they share: "employee id", "mail", "SID history", comma-separated',
            "org_a": "the first identity's organisation; `*_b` columns are the second's",
            "real_a": "`org_a` is a real organisation",
            "enabled_a": "the first identity is enabled",
            "kind_a": "the first identity's account kind",
        },
    ),
    ViewDoc(
        "group_links",
        "A group's ties to another organisation.",
        "One row per tie: nested in its group, owned by it, holding its role or app role.",
        {
            "link": '"nested in", "owned by", "holds a role of" or "holds an app role of"',
            "other_org": "the other organisation",
            "other_id": "the parent group, owner, role definition or application",
        },
    ),
    ViewDoc(
        "foreign_access",
        "Foreign principals no collected directory resolves, and the groups they reach.",
        "One row per (SID, group reached): a `foreign` member (a foreign security principal, a "
        "well-known SID) whose SID is no collected account's or group's objectSid and in no "
        "account's sIDHistory, at its direct group (depth 0) and every group that group is "
        "nested in. Resolved ones are ordinary memberships (`via` `foreign-principal` or "
        "`sIDHistory`) in `access`.",
        {
            "sid": "the foreign principal's SID",
            "via_group_id": "the group it is a direct member of",
            "depth": "0 = direct member",
            "domain_sid": "its domain (the SID without the RID); null for a well-known SID",
            "well_known": "the well-known principal's name (Everyone, Authenticated Users ...); "
            "null for a domain SID",
            "everyone": "a well-known principal every account of both forces is (Everyone, "
            "Authenticated Users, Interactive, Network, Users ...)",
            "principal_org": "the organisation the `domain_sid` matcher gives its domain, else "
            "`unattributed`",
            "principal_evidence": '"domain_sid:org" for every organisation listing the domain',
            "principal_real": "`principal_org` is a real organisation",
            "group_scope": "the group's scope (`builtin` groups hold well-known SIDs by design)",
            "group_source": "the directory holding the group",
            "cross": "the principal's and the group's real organisations differ",
        },
    ),
    ViewDoc(
        "trusts",
        "The trusts of each collected AD domain (its trustedDomain objects) and who is on "
        "each side.",
        "One row per trustedDomain object of a collected domain.",
        {
            "source": "the domain holding the trust",
            "trust_id": "the trustedDomain object's objectGUID",
            "partner": "trustPartner: the other domain's DNS name",
            "partner_sid": "the other domain's SID (securityIdentifier)",
            "direction": "trustDirection: `inbound` (the partner trusts this domain), "
            "`outbound` (this domain trusts the partner), `bidirectional` or `disabled`",
            "trust_type": "`downlevel` (NT4 / external by NetBIOS), `uplevel` (AD), `mit`, `dce`",
            "attributes": "trustAttributes as stored",
            "attribute_names": "its flags by name: NON_TRANSITIVE, QUARANTINED_DOMAIN (SID "
            "filtering), FOREST_TRANSITIVE, WITHIN_FOREST, TREAT_AS_EXTERNAL ...",
            "transitive": "NON_TRANSITIVE is not set",
            "sid_filtering": "the partner's SIDs are filtered to its own domains: "
            "QUARANTINED_DOMAIN, or a forest trust not TREAT_AS_EXTERNAL",
            "domain_org": "the declared host of the domain holding the trust (else the "
            "organisation of most of its accounts)",
            "partner_org": "the partner's declared host when it is collected, else the "
            "`domain_sid` matcher's organisation, else the organisation of most accounts of "
            "that domain SID (sIDHistory included), else `unattributed`",
            "partner_collected": "the partner domain is collected in this run",
            "lets_in": "the partner's principals can be given access here (outbound or "
            "bidirectional)",
            "cross": "the two sides belong to different real organisations",
        },
    ),
    ViewDoc(
        "resources",
        "Securable objects that are neither accounts nor groups' memberships: AD objects with "
        "their security descriptor (and, from other sources, folders, shares, mailboxes, Azure "
        "scopes), with their organisation.",
        "One row per collected resource. An AD object no organisation claims that is part of "
        "the domain itself (the domain head, CN=System with AdminSDHolder, CN=Builtin) takes the "
        "declared host of its directory.",
        {
            "resource_id": "the AD object's objectGUID (a folder's, mailbox's, scope's own id)",
            "family": "`ad-object`, `folder`, `share`, `mailbox` or `azure-scope`",
            "object_class": "the AD object's structural class (user, group, "
            "organizationalUnit, groupPolicyContainer, domainDNS ...)",
            "path": "the DN (a UNC path, an address, an ARM scope)",
            "parent_id": "the resource it sits in (its OU or container)",
            "subject_id": "the account or group the resource is (an AD user or group object)",
            "owner_sid": "the security descriptor's owner",
            "readable": "false when the descriptor could not be read: never 'no entries'",
            "linked_to": "a group policy object's OUs and domains (their gPLink names it)",
            "org": "the subject's organisation, else the `ou` / `path_prefix` matchers', else "
            "the declared host for the domain's own objects",
            "org_evidence": '"subject:org" or "matcher:org" for every matcher that fired',
            "org_conflict": _ORG_CONFLICT,
        },
    ),
    ViewDoc(
        "control",
        "Who controls which AD object: delegated rights (ACEs), owners and DCSync rights.",
        "One row per (holder, object, resource_kind), deny entries applied (in stored order), "
        "inherited entries reported on the container where they are set. Default trustees "
        "(SELF, CREATOR OWNER, SYSTEM, Enterprise DCs, the domain's protected groups) are left "
        "out.",
        {
            "principal_id": "the ACE's trustee or the owner: an account or group id, or a SID "
            "no collected object holds",
            "principal_type": "`account`, `group` or `sid` (not collected)",
            "members": "a group holder's effective member accounts (null for others)",
            "resource_kind": "`delegation` (an ACE), `object-owner` or `replication` (DCSync)",
            "rights": "the rights, comma-separated: GenericAll, GenericWrite, WriteDacl, "
            "WriteOwner, AllExtendedRights, ResetPassword, AddMember, AddSelf, "
            "WriteKeyCredentialLink, WriteRBCD, WriteSPN, WriteGPLink, CreateUser, CreateGroup, "
            "CreateComputer, WriteAllProperties, AllValidatedWrites; Owner; DCSync",
            "container": "the object is an OU, container, domain head or builtin domain",
            "subject_id": "the account or group the object is",
            "subject_type": "`account` or `group` (null for other objects)",
            "subject_grants": "grants the subject holds itself (what a group would give a "
            "holder who adds itself)",
            "inherited": "every entry behind the row is inherited (set on a parent)",
            "reach": "the objects the rights reach: 1 for an entry on the object, the objects "
            "below for an inherited entry folded onto its container",
            "linked_to": "a group policy object's OUs and domains",
            "cross": "the holder and the object belong to different real organisations",
        },
    ),
    ViewDoc(
        "control_gpo",
        "Control over group policy objects, with the OUs and domains each is linked to.",
        "One row per (holder, GPO, linked OU or domain).",
        {
            "linked_id": "the OU or domain whose gPLink names the GPO",
            "linked_org": "that OU's (domain's) organisation",
            "cross": "the holder and the linked OU belong to different real organisations",
        },
    ),
    ViewDoc(
        "data_access",
        "Who reaches which data of the hosted services: NTFS entries on folders, share "
        "permissions, mailbox permissions, Azure role assignments.",
        "One row per (holder, resource, right, allow or deny). Folder entries are reported on "
        "the folder where they are set, with the folders they reach; trustees are resolved to "
        "directory objects by SID, UPN, address or Entra object id (others stay as written).",
        {
            "principal_id": "the trustee: an account or group id, or the SID / name as the "
            "service wrote it when no collected object holds it",
            "principal_type": "`account`, `group` or `unresolved`",
            "members": "a group holder's effective member accounts (null for others)",
            "resource_kind": "`folder`, `share`, `mailbox` or `azure-scope`",
            "family": "the resource's family (`folder`, `share`, `mailbox`, `azure-scope`)",
            "object_class": "folder, file, share; SharedMailbox, UserMailbox ...; "
            "managementGroup, subscription, resourceGroup, resource, root",
            "resource_path": "the UNC path, the primary SMTP address or the ARM scope",
            "right": "folders and shares: `full control`, `modify`, `read`, `other`; "
            "mailboxes: FullAccess, ReadPermission, ChangePermission, ChangeOwner, DeleteItem, "
            "SendAs, SendOnBehalf, `Folder <name>: <right>`; Azure: the role's name",
            "deny": "a deny entry (folders, shares, mailboxes)",
            "denied": "an allow the same holder is also denied on the same resource",
            "strong": "a right above read: full control, modify; FullAccess, SendAs, "
            "SendOnBehalf, ChangePermission, ChangeOwner; Owner, Contributor, User Access "
            "Administrator, Role Based Access Control Administrator",
            "inherited": "every entry behind the row is inherited from above what was read",
            "reach": "the folders an entry applies to (1 for a mailbox or a scope)",
            "cross": "the holder and the resource belong to different real organisations",
        },
    ),
)
