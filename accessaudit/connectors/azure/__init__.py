"""Azure RBAC role assignments: ``arm`` reads them from Azure Resource Manager with the app's
msal credential, ``azcli`` from ``az role assignment list`` output; ``tables`` turns either
into ``azure-scope`` resources and grants; ``collect`` picks the input."""
