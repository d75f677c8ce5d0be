"""Render the single-file HTML report from the templates in ``reports/``.

One file, no network: ``report.css`` and ``report.js`` are inlined, and a Content-Security-Policy
meta tag allows exactly those two inline blocks (by SHA-256 hash) and nothing else: no other
script, style, connection, frame, form target or remote image can run or load even if a
template bug ever let markup through. Directory data reaches the page only through jinja2
autoescaping, and the page script only through ``<script type="application/json">`` blocks
(``|tojson`` escapes ``< > & '``; non-ASCII, including U+2028/2029, is ``\\u``-escaped). The
three large tables go through ``|embed`` (:mod:`accessaudit.report.embed`): columnar, gzip,
base64 in one JSON string, which holds nothing but ``[A-Za-z0-9+/=]``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from accessaudit.errors import AuditError
from accessaudit.report import embed
from accessaudit.store.runs import atomic_write_bytes

TEMPLATE: Final = "report.html.j2"
STYLESHEET: Final = "report.css"
SCRIPT: Final = "report.js"


def templates_dir() -> Path:
    """The built-in report templates: the installed copy first, else the checkout's.

    An installed wheel has them at ``accessaudit/_data/reports`` (hatch force-include); a
    source checkout has them at the top-level ``reports/``.
    """
    installed = Path(str(resources.files("accessaudit"))) / "_data" / "reports"
    checkout = Path(__file__).resolve().parents[2] / "reports"
    for candidate in (installed, checkout):
        if (candidate / TEMPLATE).is_file():
            return candidate
    raise AuditError(
        f"report templates not found (looked in {installed} and {checkout})",
        hint="reinstall accessaudit, or run it from a complete source checkout",
    )


def environment(
    template_dirs: Sequence[Path] | None = None, *, compress: bool = True
) -> Environment:
    """The report's jinja2 environment: site template folders first, then the built-in ones.

    ``autoescape=True`` (not ``select_autoescape``: the templates end in ``.j2``) and
    ``StrictUndefined``, so a typo in a template is an error rather than an empty cell. The
    ``embed`` filter writes a table for the page script (``compress=False``: columnar JSON
    without gzip, for the benchmark's comparison).
    """
    search = [Path(d) for d in template_dirs or []] + [templates_dir()]
    env = Environment(
        loader=FileSystemLoader([str(d) for d in search]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # base64 or htmlsafe JSON only: nothing in it can close the block or start markup
    env.filters["embed"] = lambda table: Markup(embed.encode(table, compress=compress))  # noqa: S704
    return env


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _asset(env: Environment, name: str, closing: str) -> str:
    """A static asset's text, refusing any that could end its own inline element early."""
    assert env.loader is not None
    text, _, _ = env.loader.get_source(env, name)
    if closing in text.lower() or "<!--" in text:
        raise AuditError(
            f"report asset {name} contains {closing!r} or '<!--'",
            hint="an inline asset must not close its own element; fix the template override",
        )
    return text


def content_security_policy(css: str, js: str) -> str:
    """The page's CSP: only the two inline blocks with exactly this text may apply or run."""
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src {_csp_hash(css)}",
            f"script-src {_csp_hash(js)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def exports_href(run_dir: Path, report: Path) -> str | None:
    """The URL prefix, relative to ``report``'s folder, of the exports in ``run_dir``.

    ``""`` when the report is in the run folder, else e.g. ``"runs/20261126T050000Z/"`` (the
    demo's ``<out>/report.html``) or ``"../data/runs/…/"`` (``report --out``); each segment
    percent-encoded. None when no relative path exists (another drive on Windows): the report
    then names the folder instead of linking into it.
    """
    try:
        rel = os.path.relpath(run_dir.resolve(), report.resolve().parent)
    except ValueError:
        return None
    rel = Path(rel).as_posix()
    return "" if rel == "." else quote(rel) + "/"


def render_string(
    context: Mapping[str, Any],
    template_dirs: Sequence[Path] | None = None,
    *,
    compress: bool = True,
) -> str:
    """The report as a string (what :func:`render_html` writes)."""
    env = environment(template_dirs, compress=compress)
    css = _asset(env, STYLESHEET, "</style")
    js = _asset(env, SCRIPT, "</script")
    return env.get_template(TEMPLATE).render(
        r=context,
        csp=content_security_policy(css, js),
        # our own static assets, not data: inserted verbatim so their CSP hashes match
        asset_css=Markup(css),  # noqa: S704
        asset_js=Markup(js),  # noqa: S704
    )


def render_html(
    context: Mapping[str, Any],
    out_path: Path,
    template_dirs: list[Path] | None = None,
    *,
    compress: bool = True,
) -> Path:
    """Render the report for ``context`` (from ``build_context``) to ``out_path`` (mode 0600).

    ``template_dirs`` are searched before the built-in templates, so a site can override
    ``report.html.j2``, a partial, ``report.css`` or ``report.js``.
    """
    text = render_string(context, template_dirs, compress=compress)
    return atomic_write_bytes(Path(out_path), text.encode("utf-8"))
