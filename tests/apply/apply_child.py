"""Run ``apply_plan --execute`` in its own process (the crash tests SIGKILL it mid-way).

Usage: python apply_child.py PLAN SOURCE_JSON PASSWORD_ENV [ID ...] (AD; only these, if any)
       python apply_child.py PLAN ENTRA_JSON --cloud ID [ID ...] (Graph; only these actions)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from accessaudit.config.sources import EntraSource, LdapSource
from accessaudit.remediation.apply.execute import Directory, apply_plan
from accessaudit.remediation.planfile import load_plan

if __name__ == "__main__":
    plan, source = Path(sys.argv[1]), sys.argv[2]
    only: list[str] = []
    dirs: dict[str, Directory]
    if sys.argv[3] == "--cloud":
        from accessaudit.remediation.apply.graph import GraphDirectory

        dirs = {"cloud": GraphDirectory.open(EntraSource.model_validate(json.loads(source)))}
        only = sys.argv[4:]
    else:
        from accessaudit.remediation.apply.ldap import LdapDirectory

        cfg = LdapSource.model_validate(json.loads(source))
        dirs = {"ad": LdapDirectory.open(cfg, os.environ[sys.argv[3]])}
        only = sys.argv[4:]
    report = apply_plan(
        load_plan(plan),
        plan,
        dirs,
        execute=True,
        max_changes=1000,
        rate=0,
        only_ids=only,
        allow_large=True,
    )
    print(json.dumps({"writes": report.writes}))
