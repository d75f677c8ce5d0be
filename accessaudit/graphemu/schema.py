"""What Graph v1.0 returns for each object type: @odata.type values, property sets, built-in roles.

Sources: the resource pages on learn.microsoft.com/graph/api/resources (user, group,
servicePrincipal, orgContact, device) and the user-list page (default properties).
"""

from __future__ import annotations

ODATA_TYPE = {
    "user": "#microsoft.graph.user",
    "group": "#microsoft.graph.group",
    "servicePrincipal": "#microsoft.graph.servicePrincipal",
    "orgContact": "#microsoft.graph.orgContact",
    "device": "#microsoft.graph.device",
    "administrativeUnit": "#microsoft.graph.administrativeUnit",
}

#: Returned by GET /users without $select (learn.microsoft.com/graph/api/user-list).
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
USER_PROPERTIES = frozenset(
    {
        *USER_DEFAULT,
        "accountEnabled",
        "userType",
        "companyName",
        "department",
        "employeeId",
        "employeeType",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "createdDateTime",
        "deletedDateTime",
        "identities",
        "lastPasswordChangeDateTime",
        "mailNickname",
        "onPremisesSyncEnabled",
        "onPremisesSecurityIdentifier",
        "onPremisesSamAccountName",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesUserPrincipalName",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "securityIdentifier",
        "signInActivity",
        "proxyAddresses",
        "usageLocation",
    }
)
#: Properties that cannot be returned in a collection: 501 NotImplemented.
USER_NOT_IN_COLLECTION = frozenset(
    {"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects", "preferredName",
     "responsibilities", "schools", "skills", "mailboxSettings"}
)  # fmt: skip
GROUP_PROPERTIES = (
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "proxyAddresses",
    "renewedDateTime",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
)
#: servicePrincipal (v1.0 resource page): appOwnerOrganizationId is "the tenant ID where the
#: application is registered", served for every service principal (the emulator's own apps:
#: the tenant's id).
SP_PROPERTIES = (
    "id",
    "accountEnabled",
    "appId",
    "appDisplayName",
    "appOwnerOrganizationId",
    "appRoles",
    "description",
    "displayName",
    "servicePrincipalType",
    "tags",
)
CONTACT_PROPERTIES = ("id", "displayName", "mail", "companyName", "department")
DEVICE_PROPERTIES = ("id", "displayName", "deviceId", "operatingSystem", "accountEnabled")
#: administrativeUnit (v1.0 resource page and the directory-list-administrativeunits example).
AU_PROPERTIES = (
    "id",
    "deletedDateTime",
    "description",
    "displayName",
    "isMemberManagementRestricted",
    "membershipRule",
    "membershipRuleProcessingState",
    "membershipType",
    "visibility",
)
PROPERTIES = {
    "user": tuple(sorted(USER_PROPERTIES)),
    "group": GROUP_PROPERTIES,
    "servicePrincipal": SP_PROPERTIES,
    "orgContact": CONTACT_PROPERTIES,
    "device": DEVICE_PROPERTIES,
    "administrativeUnit": AU_PROPERTIES,
}
DEFAULTS = {
    "user": USER_DEFAULT,
    "group": GROUP_PROPERTIES,
    "servicePrincipal": SP_PROPERTIES,
    "orgContact": CONTACT_PROPERTIES,
    "device": DEVICE_PROPERTIES,
    "administrativeUnit": AU_PROPERTIES,
}

#: A few built-in directory roles (template id = role definition id for built-in roles), from
#: learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference.
BUILTIN_ROLES: tuple[tuple[str, str], ...] = (
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator"),
    ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator"),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"),
    ("fdd7a751-b60b-444a-984c-02652fe8fa1c", "Groups Administrator"),
    ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
    ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator"),
)
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
