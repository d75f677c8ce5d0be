"""The evidence pack: the compliance reviewer's printable record of a run (``evidence-pack.html``).

The interactive report carries every finding (printing its evidence view gave the demo a
1,000-page PDF); a reviewer files something else: the verdict, the method, what was collected
and how completely, how objects were attributed, the rules as run with each one's result (a rule
with nothing found is evidence too), per rule its counts and a few samples with their evidence,
the exceptions register, the changes since the last run, and the SHA-256 of every file of the
run, where the full lists are. One page-oriented HTML file beside the report, no script at all
(its Content-Security-Policy allows one inline stylesheet by hash and nothing else), written for
A4 print: printed from any browser (or ``chromium --headless --print-to-pdf``) it stays short
(the demo's: well under 50 pages).

:func:`pack_section` builds its per-rule part inside
:func:`accessaudit.report.context.build_context` (it needs the resolved names); :func:`render_pack`
writes the file from the same context as the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from markupsafe import Markup

from accessaudit.report.html import _asset, _csp_hash, environment
from accessaudit.report.rows import F
from accessaudit.store.runs import atomic_write_bytes

TEMPLATE: Final = "evidence_pack.html.j2"
PACK_CSS: Final = "pack.css"
#: Findings shown per rule (open first, worst first); the exports hold every one.
SAMPLES: Final = 5
#: The pack's file name beside a report named ``report.html``.
PACK_NAME: Final = "evidence-pack.html"


def pack_path(report: Path) -> Path:
    """Where the pack of ``report`` is written: ``evidence-pack.html`` beside ``report.html``,
    ``<stem>-evidence-pack.html`` beside any other name."""
    if report.name == "report.html":
        return report.with_name(PACK_NAME)
    return report.with_name(f"{report.stem}-{PACK_NAME}")


def pack_section(
    finding_rows: Sequence[Sequence[Any]],
    docs: Mapping[str, Mapping[str, Any]],
    view: Callable[[Sequence[Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Per rule (in the appendix's order: worst first): open and accepted counts and the first
    :data:`SAMPLES` findings (``finding_rows`` are open first, worst first)."""
    samples: dict[str, list[Sequence[Any]]] = {}
    total: Counter[str] = Counter()
    for f in finding_rows:
        rid = f[F["rule_id"]]
        total[rid] += 1
        got = samples.setdefault(rid, [])
        if len(got) < SAMPLES:
            got.append(f)
    rules = [
        {
            "id": rid,
            "samples": [view(f) for f in samples.get(rid, [])],
            "more": total[rid] - len(samples.get(rid, [])),
        }
        for rid in docs
    ]
    return {"samples_per_rule": SAMPLES, "rules": rules, "by_id": {r["id"]: r for r in rules}}


def render_pack(context: Mapping[str, Any], out_path: Path) -> Path:
    """Write the evidence pack for ``context`` (from ``build_context``), mode 0600."""
    env = environment()
    css = _asset(env, "report.css", "</style") + "\n" + _asset(env, PACK_CSS, "</style")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"style-src {_csp_hash(css)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    text = env.get_template(TEMPLATE).render(
        r=context,
        csp=csp,
        asset_css=Markup(css),  # noqa: S704 - our own stylesheet, hashed into the CSP
    )
    return atomic_write_bytes(Path(out_path), text.encode("utf-8"))
