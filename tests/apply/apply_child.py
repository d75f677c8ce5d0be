"""Run ``apply_plan --execute`` in its own process (the crash test SIGKILLs it mid-way).

Usage: python apply_child.py PLAN SOURCE_JSON PASSWORD_ENV
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from accessaudit.config import LdapSource
from accessaudit.remediation.apply import apply_plan
from accessaudit.remediation.apply_ldap import LdapDirectory
from accessaudit.remediation.planfile import load_plan

if __name__ == "__main__":
    plan, source, env = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    cfg = LdapSource.model_validate(json.loads(source))
    d = LdapDirectory.open(cfg, os.environ[env])
    report = apply_plan(load_plan(plan), plan, {"ad": d}, execute=True, max_changes=100, rate=0)
    print(json.dumps({"writes": report.writes}))
