"""The embedded synthetic two-force estate and its planted ground truth.

:func:`accessaudit.sample.directory.generate` builds it (a
:class:`accessaudit.sample.builder.Sample`); the module docstring of
:mod:`accessaudit.sample.directory` maps the package: the shared builder, the people and
accounts, the groups, one plant function per case family, the Entra tenant and the application
exports.
"""
