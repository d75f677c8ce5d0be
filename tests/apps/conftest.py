"""Registers the estate of application exports written in the tests (:mod:`support.app_exports`)."""

from support.app_exports import estate  # noqa: F401
