"""Connectors: one module per source kind, each returning canonical tables plus completeness.

Every connector takes its source's settings (``accessaudit.config.sources``) and returns a
:class:`accessaudit.model.SourceCollection`; nothing connects at import time.
"""
