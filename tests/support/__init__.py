"""Helpers shared by the test suites (``tests`` is on ``sys.path``: ``from support.x import y``).

Nothing here is a test; nothing starts a server at import time.

- :mod:`.fixtures`: the suite-wide pytest plugin (``-p support.fixtures``): the embedded sample,
  its analysis, the rules, and the recording that fails a module whose read calls wrote.
- :mod:`.recorder`: records every LDAP operation and HTTP request the tool makes (in this
  process and in subprocesses) and judges them: reads only, loopback only.
- :mod:`.browser`: Debian's Chromium driven by playwright, for the browser tests.
- :mod:`.history_runs`: runs over an evolving sample written through the real pipeline.
- :mod:`.memory_keyring`: an in-memory keyring backend.
- :mod:`.plan_docs`: a saved-plan document without a what-if.
- :mod:`.truth`: findings compared with the generator's planted ground truth.
- :mod:`.htmltree`: rendered HTML parsed into a small tree (stdlib ``html.parser``).
- :mod:`.report_sample` / :mod:`.report_history_sample`: a small hand-made run, its report
  context, and a history and trend for it.
- :mod:`.entra_data`: small hand-built Entra datasets with exact expected tables.
- :mod:`.servers`: real directory servers on loopback (Samba AD DC, slapd), seeding, comparison.
- :mod:`.apply_servers` / :mod:`.applyflow`: the Samba DC the apply tests write to, and the
  audit-plan-apply steps they share.
- :mod:`.hardening_env`: the hardening suites' boundary domain, Graph emulator and fixtures.
- :mod:`.hardening_cli`: configuration files, the command line in a subprocess, and the checks
  every fault scenario makes.
- :mod:`.ldaprelay`: a TLS-terminating LDAP relay that cuts, stalls or rewrites one message.
- :mod:`.badcerts`: server certificates a client must refuse (expired, wrong host, self-signed).
- :mod:`.payloads`: hostile directory text (XSS, spreadsheet formulas, terminal escapes).
- :mod:`.loopback`: no proxy from the environment between a test and its loopback servers.
"""
