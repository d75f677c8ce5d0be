"""What every settings model shares: an unknown key is an error and settings never change."""

from __future__ import annotations

from pydantic import ConfigDict

#: ``extra="forbid"``: a misspelt key fails validation instead of being ignored; ``frozen``:
#: settings are read, never changed, once loaded (copies are made with ``model_copy``). Each
#: settings module derives its own ``_Model`` from ``BaseModel`` with it (a base class imported
#: from another module would hide from ruff that the subclasses are pydantic models).
STRICT = ConfigDict(extra="forbid", frozen=True)
