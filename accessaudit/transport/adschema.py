"""The Active Directory schema GUIDs that object ACEs name, with their names.

Values read from the Samba 4.17 schema (``schemaIDGUID`` under CN=Schema, ``rightsGuid`` under
CN=Extended-Rights,CN=Configuration) and, for ``msDS-KeyCredentialLink`` (not in Samba's 2012 R2
schema), from the Windows Server 2016 schema LDF Samba ships; each is also listed on
learn.microsoft.com/windows/win32/adschema (attributes a-*, classes c-*, rights r-*). Lower-case
GUID strings, as :mod:`accessaudit.transport.secdesc` gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# --- extended rights (CR; rightsGuid) -----------------------------------------------------------
USER_FORCE_CHANGE: Final = "00299570-246d-11d0-a768-00aa006e0529"  # User-Force-Change-Password
USER_CHANGE: Final = "ab721a53-1e2f-11d0-9819-00aa0040529b"  # User-Change-Password
GET_CHANGES: Final = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"  # DS-Replication-Get-Changes
GET_CHANGES_ALL: Final = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"  # ...-Get-Changes-All
GET_CHANGES_FILTERED: Final = "89e95b76-444d-4c62-991a-0facbeda640c"  # ...-In-Filtered-Set

# --- attributes (WP; schemaIDGUID) and validated writes (SW) that share their GUID -----------
MEMBER: Final = "bf9679c0-0de6-11d0-a285-00aa003049e2"  # also Self-Membership (SW)
SPN: Final = "f3a64788-5306-11d1-a9c5-0000f80367c1"  # servicePrincipalName, Validated-SPN (SW)
RBCD: Final = "3f78c3e5-f79a-46bd-a0b8-9d18116ddc79"  # msDS-AllowedToActOnBehalfOfOtherIdentity
KEY_CREDENTIAL_LINK: Final = "5b47d60f-6090-40b2-9f37-2a4de88f3063"  # msDS-KeyCredentialLink
GPLINK: Final = "f30e3bbe-9ff0-11d1-b603-0000f80367c1"
DNS_HOST_NAME: Final = "72e39547-7b18-11d1-adef-00c04fd8d5cd"

# --- property sets (WP on the set = every attribute in it) -------------------------------------
MEMBERSHIP_SET: Final = "bc0ac240-79a9-11d0-9020-00c04fc2d4cf"  # holds member
PUBLIC_INFORMATION_SET: Final = "e48d0154-bcf8-11d1-8702-00c04fb96050"  # holds SPN
ACCOUNT_RESTRICTIONS_SET: Final = "4c164200-20c0-11d0-a768-00aa006e0529"  # holds RBCD

# --- classes (CC/DC object types; InheritedObjectType) -----------------------------------------
USER: Final = "bf967aba-0de6-11d0-a285-00aa003049e2"
GROUP: Final = "bf967a9c-0de6-11d0-a285-00aa003049e2"
COMPUTER: Final = "bf967a86-0de6-11d0-a285-00aa003049e2"
ORGANIZATIONAL_UNIT: Final = "bf967aa5-0de6-11d0-a285-00aa003049e2"
INET_ORG_PERSON: Final = "4828cc14-1437-45bc-9b07-ad6f015e5f28"
GROUP_POLICY_CONTAINER: Final = "f30e3bc2-9ff0-11d1-b603-0000f80367c1"
DOMAIN_DNS: Final = "19195a5b-6da0-11d0-afd3-00c04fd930c9"
CONTAINER: Final = "bf967a8b-0de6-11d0-a285-00aa003049e2"

#: Class GUID by lDAPDisplayName (lower case), for matching ``InheritedObjectType``.
CLASS_GUIDS: Final[Mapping[str, str]] = {
    "user": USER,
    "group": GROUP,
    "computer": COMPUTER,
    "organizationalunit": ORGANIZATIONAL_UNIT,
    "inetorgperson": INET_ORG_PERSON,
    "grouppolicycontainer": GROUP_POLICY_CONTAINER,
    "domaindns": DOMAIN_DNS,
    "container": CONTAINER,
}

#: Every GUID above by its schema or rights name, for reports and commands.
NAMES: Final[Mapping[str, str]] = {
    USER_FORCE_CHANGE: "User-Force-Change-Password",
    USER_CHANGE: "User-Change-Password",
    GET_CHANGES: "DS-Replication-Get-Changes",
    GET_CHANGES_ALL: "DS-Replication-Get-Changes-All",
    GET_CHANGES_FILTERED: "DS-Replication-Get-Changes-In-Filtered-Set",
    MEMBER: "member",
    SPN: "servicePrincipalName",
    RBCD: "msDS-AllowedToActOnBehalfOfOtherIdentity",
    KEY_CREDENTIAL_LINK: "msDS-KeyCredentialLink",
    GPLINK: "gPLink",
    DNS_HOST_NAME: "dNSHostName",
    MEMBERSHIP_SET: "Membership (property set)",
    PUBLIC_INFORMATION_SET: "Public-Information (property set)",
    ACCOUNT_RESTRICTIONS_SET: "User-Account-Restrictions (property set)",
    USER: "user",
    GROUP: "group",
    COMPUTER: "computer",
    ORGANIZATIONAL_UNIT: "organizationalUnit",
    INET_ORG_PERSON: "inetOrgPerson",
    GROUP_POLICY_CONTAINER: "groupPolicyContainer",
    DOMAIN_DNS: "domainDNS",
    CONTAINER: "container",
}
