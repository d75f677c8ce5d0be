"""Real directory servers for tests, started on loopback inside temporary directories.

- :mod:`.samba`: a Samba Active Directory domain controller: provision, start, copy, stop.
- :mod:`.slapd`: an OpenLDAP ``slapd`` with mdb + memberof + refint on a non-privileged port.
- :mod:`.dataset`: a small hand-made canonical dataset (the four tables of ``accessaudit.model``).
- :mod:`.load_ad` / :mod:`.load_openldap`: write a canonical dataset into a server and return
  the mapping from dataset ids to the ids the server assigned.

Nothing here is imported by the package; nothing starts at import time. A server that cannot be
started raises :class:`ServerUnavailable` naming the Debian package to install.
"""

from __future__ import annotations


class ServerUnavailable(RuntimeError):
    """A test server could not be started; the message names the package to install."""
