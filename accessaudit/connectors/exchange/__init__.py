"""Exchange Online mailbox permissions from the admin's ``Export-Csv`` files: ``pscsv`` reads
exactly what PowerShell writes, ``collect`` turns the exports into mailbox ``resources`` and
``grants`` (FullAccess, SendAs, SendOnBehalf, folder delegation)."""
