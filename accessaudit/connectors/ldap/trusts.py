"""The trusts of an AD domain: its ``trustedDomain`` objects (under CN=System), as TRUSTS_SCHEMA.

Attributes and flags from [MS-ADTS] 6.1.6.7 (trustedDomain object) and [MS-ADTS] 6.1.6.7.9
(trustAttributes), learn.microsoft.com/openspecs/windows_protocols/ms-adts/e9a2d23c-c31e-4a6f-
88a0-6646fdb51a3c: trustDirection 0 disabled, 1 inbound (the partner trusts this domain),
2 outbound (this domain trusts the partner: the partner's principals may be granted access
here), 3 both; trustType 1 downlevel, 2 uplevel, 3 MIT, 4 DCE. SID filtering holds when the
trust is QUARANTINED_DOMAIN, or a forest trust (FOREST_TRANSITIVE) not TREAT_AS_EXTERNAL
(a forest trust filters SIDs of other forests unless treated as external, which lets SID
history through). An ordinary domain user can read these objects.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from accessaudit.connectors.ldap.decode import extended_dn, utf8
from accessaudit.connectors.ldap.search import Session
from accessaudit.model import TRUSTS_SCHEMA, conform
from accessaudit.transport.sid import sid_to_str

TRUST_ATTRS: Final = (
    "trustPartner",
    "flatName",
    "securityIdentifier",
    "trustDirection",
    "trustType",
    "trustAttributes",
)
#: trustAttributes bits by name ([MS-ADTS] 6.1.6.7.9).
TRUST_FLAGS: Final = {
    "NON_TRANSITIVE": 0x1,
    "UPLEVEL_ONLY": 0x2,
    "QUARANTINED_DOMAIN": 0x4,
    "FOREST_TRANSITIVE": 0x8,
    "CROSS_ORGANIZATION": 0x10,
    "WITHIN_FOREST": 0x20,
    "TREAT_AS_EXTERNAL": 0x40,
    "USES_RC4_ENCRYPTION": 0x80,
    "CROSS_ORGANIZATION_NO_TGT_DELEGATION": 0x200,
    "PIM_TRUST": 0x400,
}
DIRECTIONS: Final = {0: "disabled", 1: "inbound", 2: "outbound", 3: "bidirectional"}
TYPES: Final = {1: "downlevel", 2: "uplevel", 3: "mit", 4: "dce"}


def collect_trusts(s: Session, source: str) -> pl.DataFrame:
    """Every ``trustedDomain`` object under the base (one paged search, its own unit)."""
    cols = s.paged("trusts", "(objectClass=trustedDomain)", list(TRUST_ATTRS), ad=True)
    sids = [sid_to_str(v) if v else None for v in cols.first("securityIdentifier").to_list()]
    raw = pl.DataFrame(
        {
            "_ext": cols.dn,
            "partner": utf8(cols.first("trustPartner")),
            "flat_name": utf8(cols.first("flatName")),
            "partner_sid": pl.Series(sids, dtype=pl.String),
            "_dir": utf8(cols.first("trustDirection")),
            "_type": utf8(cols.first("trustType")),
            "_attr": utf8(cols.first("trustAttributes")),
        }
    )
    return trust_rows(raw, source)


def trust_rows(raw: pl.DataFrame, source: str) -> pl.DataFrame:
    """TRUSTS_SCHEMA rows from the decoded attributes (``_ext``: the extended DN; ``_dir``,
    ``_type``, ``_attr``: the integers as text)."""
    guid, _, _ = extended_dn(pl.col("_ext"))
    attr = pl.col("_attr").cast(pl.Int64, strict=False).fill_null(0)
    # a 32-bit value AD may return as a negative number
    attr = pl.when(attr < 0).then(attr + 2**32).otherwise(attr)
    names = pl.concat_list(
        [
            pl.when((pl.col("attributes") & bit) != 0).then(pl.lit(name)).otherwise(None)
            for name, bit in TRUST_FLAGS.items()
        ]
    ).list.drop_nulls()
    has = {name: (pl.col("attributes") & bit) != 0 for name, bit in TRUST_FLAGS.items()}
    out = (
        raw.with_columns(
            source=pl.lit(source),
            trust_id=guid,
            attributes=attr,
            direction=pl.col("_dir")
            .cast(pl.Int64, strict=False)
            .replace_strict(DIRECTIONS, default=None, return_dtype=pl.String),
            trust_type=pl.col("_type")
            .cast(pl.Int64, strict=False)
            .replace_strict(TYPES, default=None, return_dtype=pl.String),
        )
        .with_columns(
            attribute_names=names,
            transitive=~has["NON_TRANSITIVE"],
            sid_filtering=has["QUARANTINED_DOMAIN"]
            | (has["FOREST_TRANSITIVE"] & ~has["TREAT_AS_EXTERNAL"]),
        )
        .drop("_ext", "_dir", "_type", "_attr")
    )
    return conform(out, TRUSTS_SCHEMA)
