"""Pseudonymised outputs: names, usernames, UPNs, mails, SIDs, DNs and employee ids replaced by
keyed tokens, for reviewers who need numbers, not names (``--pseudonymise``,
``report.pseudonymise``).

A token is ``<kind>-`` + the first 16 hex digits of HMAC-SHA256(key, kind NUL casefolded value):
the same person gets the same token in every run made with the same key, so reports can be
compared over time, and nobody without the key can confirm a guess (a plain hash of a UPN could
be reversed by hashing the staff list). An account is **one** person: its username, display
name, UPN, mail and employee id all become its one ``person-`` token (of its account id), so a
row never shows one person as two tokens; UPNs and mails keep their domain
(``person-3f2a…@westmercia.police.uk``): the force is evidence, the person is not; a DN keeps
its OUs (``CN=person-3f2a…,OU=WARKS,...``). Names that are nobody's stay readable: groups with
a SID Microsoft defines (Server Operators, Domain Admins) and applications' roles.

The key is 32 random bytes (hex) in ``report.pseudonym_key_file`` (default
``<data_dir>/pseudonym.key``), created 0600 on first use, refused when it lies inside the runs
folder or is readable by others. Its ``key_id`` (a hash of the key, not the key) is recorded in
the manifest so two reports can be seen to share a key.

Structured columns are tokenised value by value. Ids are replaced by the ids themselves, not
by searching for names in them: every account and group id that is not a bare GUID (an
application user's ``csv:niche:user:<username>``, a role's ``csv:niche:role:<role>``) gets a
token id (``csv:niche:user:user-3f2a…``, its prefix kept), and every id column (``account_id``,
``member_id``, ``resource_id`` ...) and every part of a key (``finding_key``, ``action_id``,
``finding_keys``) is mapped exactly, whatever the case or length of the name in it. Every other
text column that can carry directory text (rule ``detail``, action summaries and PowerShell
commands, descriptions) has every known id and raw value (also lower-cased, as ids and rule
text hold them) replaced by its token (polars ``replace_many``: Aho-Corasick, leftmost-longest,
ASCII case-insensitive). Only the report and the exports are pseudonymised; the run's Parquet tables
and manifest stay raw (owner-only), because history and re-rendering need them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from accessaudit.report.pseudonym_ids import ID_COLUMNS as ID_COLUMNS
from accessaudit.report.pseudonym_ids import KEY_COLUMNS as KEY_COLUMNS
from accessaudit.report.pseudonym_ids import map_ids
from accessaudit.report.pseudonym_key import KEY_FILE as KEY_FILE
from accessaudit.report.pseudonym_key import key_path
from accessaudit.report.pseudonym_key import load_key as load_key

if TYPE_CHECKING:
    from accessaudit.config.settings import Settings

#: Values shorter than this are tokenised in their own columns but not searched for in text
#: (a two-letter username would otherwise be replaced inside every word).
MIN_TEXT_LENGTH: Final = 3
TOKEN_HEX: Final = 16

#: column -> token kind, per table
ACCOUNT_FIELDS: Final = {
    "username": "user",
    "display_name": "name",
    "upn": "upn",
    "mail": "mail",
    "sid": "sid",
    "dn": "dn",
    "employee_id": "emp",
}
GROUP_FIELDS: Final = {"name": "group", "sid": "sid", "dn": "dn"}
#: Columns never searched for names: fixed vocabularies and configuration values.
_KEEP: Final = frozenset(
    {
        "source",
        "rule_id",
        "severity",
        "title",
        "action",
        "kind",
        "status",
        "finding_status",
        "org",
        "org_evidence",
        "principal_org",
        "resource_org",
        "owning_org",
        "member_kind",
        "via",
        "scope",
        "mastered",
        "company",
        "department",
        "resource_kind",
        "sources",
        "first_seen_run",
        "last_seen_run",
        "resolved_run",
        "history_status",
        "unknown_reason",
    }
)


_GUID: Final = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
#: A GUID, or a key of a rule / action id and GUIDs ("cross-org-...|<guid>|<guid>|"): no name
#: can be in it. (SIDs are not exempt: a SID is personal data here.)
_PURE_ID: Final = rf"^(?:[a-z][a-z0-9-]*\|)?(?:{_GUID})?(?:\|(?:{_GUID})?)*$"


#: Kinds searched for in free text. Not DNs: the names in them (a user's CN is the display
#: name, a group's its name) are searched for anyway, and 200,000 long DNs would make the
#: search automaton several times larger.
_TEXT_KINDS: Final = frozenset({"user", "name", "upn", "mail", "sid", "emp", "group"})


#: Account columns that name the person (all get the account's one ``person-`` token).
PERSON_FIELDS: Final = ("username", "display_name", "upn", "mail", "employee_id")
#: An RDN's value up to the first unescaped comma (``CN=Smith\, Jo,OU=...``).
_FIRST_RDN: Final = r"^([A-Za-z]+=)(?:\\.|[^,\\])*"


def well_known_sid(column: str = "sid") -> pl.Expr:
    """SIDs Microsoft defines, whose groups' names are Microsoft's, nobody's personal data:
    builtin aliases (``S-1-5-32-544`` Administrators), a domain's own RIDs below 1000 (512
    Domain Admins, 549 Server Operators, 513 Domain Users) and the fixed SIDs outside any domain
    (``S-1-1-0`` Everyone, ``S-1-5-11`` Authenticated Users). Not Entra's ``S-1-12-1-...``:
    those are a tenant's own objects."""
    sid = pl.col(column)
    rid = sid.str.extract(r"-(\d+)$", 1).cast(pl.Int64, strict=False)
    domain = sid.str.starts_with("S-1-5-21-")
    fixed = sid.str.contains(r"^S-1-[0-35]-\d+$")  # one sub-authority: S-1-5-18, S-1-1-0
    return (sid.str.starts_with("S-1-5-32-") | (domain & (rid < 1000)) | fixed).fill_null(False)


def _readable_groups(groups: pl.DataFrame) -> pl.Series:
    """Groups whose names are nobody's: a SID Microsoft defines, or an application's role."""
    readable = [pl.lit(False)]
    if "sid" in groups.columns:
        readable.append(well_known_sid("sid"))
    if "kind" in groups.columns:
        readable.append((pl.col("kind") == "app-role").fill_null(False))
    return groups.select(pl.any_horizontal(readable).alias("keep")).to_series()


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or (isinstance(dtype, pl.List) and dtype.inner == pl.String)


class Pseudonymiser:
    """Keyed tokens for one key; :meth:`analysis` and :meth:`frame` apply them to tables."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key too short")
        self._key = key
        self.key_id = hashlib.sha256(b"accessaudit pseudonym key id\0" + key).hexdigest()[:16]
        self._patterns: list[str] = []
        self._tokens: list[str] = []
        self._seen: set[str] = set()
        self._cache: tuple[list[str], list[str]] | None = None
        self._known: dict[str, dict[str, str]] = {}  # kind -> raw value -> token
        self._lowered: list[str] | None = None  # _ordered() patterns, lower-cased
        self._ids: dict[str, str] = {}  # raw id -> token id

    # --- tokens ---------------------------------------------------------------------------

    def token(self, kind: str, value: str) -> str:
        digest = hmac.digest(self._key, f"{kind}\0{value.casefold()}".encode(), "sha256")
        token = f"{kind}-{digest.hex()[:TOKEN_HEX]}"
        if kind in ("upn", "mail") and "@" in value:
            token += "@" + value.rpartition("@")[2].lower()
        return token

    def _column(self, series: pl.Series, kind: str) -> pl.Series:
        """Tokens for a String or List(String) column; each new value is remembered for text."""
        if isinstance(series.dtype, pl.List):
            mapping = self._learn(series.explode(), kind)
            return series.list.eval(pl.element().replace(mapping))
        return series.replace(self._learn(series, kind))

    def _learn(self, series: pl.Series, kind: str) -> dict[str, str]:
        known = self._known.setdefault(kind, {})
        mapping: dict[str, str] = {}
        for value in series.drop_nulls().unique().to_list():
            if not value:
                continue
            t = known.get(value)
            if t is None:
                t = known[value] = self.token(kind, value)
                if kind in _TEXT_KINDS and len(value) >= MIN_TEXT_LENGTH:
                    # the value as written and as lower-cased (ids and rule text lower-case
                    # usernames; the search below is case-insensitive for ASCII letters only)
                    for variant in dict.fromkeys((value, value.lower(), value.casefold())):
                        self._pattern(variant, t)
                if kind == "sid":
                    self._ids.setdefault(value, t)
            mapping[value] = t
        return mapping

    def _pattern(self, value: str, token: str) -> None:
        # by the exact value: the search is case-insensitive for ASCII letters only, so each
        # spelling of a value whose capitals are not ASCII is a pattern of its own
        if value not in self._seen:
            self._seen.add(value)
            self._patterns.append(value)
            self._tokens.append(token)

    def _person_tokens(self, accounts: pl.DataFrame) -> pl.DataFrame:
        """``account_id`` -> ``_person``: one token per account, the same for its username,
        display name, UPN, mail and employee id, so a row never shows one person as two."""
        ids = accounts.get_column("account_id").drop_nulls().unique().sort()
        return pl.DataFrame(
            {
                "account_id": ids,
                "_person": [self.token("person", str(i)) for i in ids.to_list()],
            },
            schema={"account_id": accounts.schema["account_id"], "_person": pl.String},
        )

    def _learn_people(self, accounts: pl.DataFrame, persons: pl.DataFrame) -> None:
        """Remember each account's identifying values as its person token (the first account
        holding a value, by id, wins), for the columns and for the text search."""
        known = accounts.join(persons, on="account_id", how="left")
        for col in (c for c in PERSON_FIELDS if c in accounts.columns):
            pairs = (
                known.select(pl.col(col).alias("v"), "_person", "account_id")
                .filter(pl.col("v").is_not_null() & (pl.col("v") != ""))
                .sort("account_id")
                .unique("v", keep="first", maintain_order=True)
            )
            kind = ACCOUNT_FIELDS[col]
            table = self._known.setdefault(kind, {})
            for value, person in pairs.select("v", "_person").iter_rows():
                token = self._domained(kind, value, person)
                table.setdefault(value, token)
                if len(value) >= MIN_TEXT_LENGTH:
                    for variant in dict.fromkeys((value, value.lower(), value.casefold())):
                        self._pattern(variant, table[value])

    @staticmethod
    def _domained(kind: str, value: str, token: str) -> str:
        if kind in ("upn", "mail") and "@" in value:
            return token + "@" + value.rpartition("@")[2].lower()
        return token

    def _tokenise_accounts(self, df: pl.DataFrame) -> pl.DataFrame:
        """Accounts with every person field as the account's person token (UPNs and mails
        keep their domain), the DN's first RDN replaced by it, SIDs as ``sid-`` tokens."""
        if "account_id" not in df.columns:
            return self._tokenise(df, {**ACCOUNT_FIELDS, "sid_history": "sid"})
        persons = self._person_tokens(df)
        self._learn_people(df, persons)
        out = df.join(persons, on="account_id", how="left", maintain_order="left")
        exprs = []
        for col in (c for c in PERSON_FIELDS if c in df.columns):
            kind = ACCOUNT_FIELDS[col]
            value = pl.col(col)
            token = pl.col("_person")
            if kind in ("upn", "mail"):
                domain = value.str.extract(r"@([^@]*)$", 1).str.to_lowercase()
                token = pl.when(domain.is_not_null()).then(token + "@" + domain).otherwise(token)
            exprs.append(
                pl.when(value.is_null() | (value == "")).then(value).otherwise(token).alias(col)
            )
        if "dn" in df.columns:
            # the first RDN's value is the person's name: CN=<token>,OU=... (the OUs stay)
            dn = pl.col("dn")
            attr = dn.str.extract(r"^([A-Za-z]+)=", 1)
            exprs.append(
                pl.when(dn.is_null())
                .then(dn)
                .when(attr.is_null())
                .then(pl.col("_person"))
                .otherwise(attr + "=" + pl.col("_person") + dn.str.replace(_FIRST_RDN, ""))
                .alias("dn")
            )
        out = out.with_columns(exprs).drop("_person")
        rest = {k: v for k, v in (("sid", "sid"), ("sid_history", "sid")) if k in out.columns}
        return self._tokenise(out, rest)

    def _tokenise_groups(self, df: pl.DataFrame) -> pl.DataFrame:
        """Groups tokenised, except those whose names are not anybody's: a SID Microsoft
        defines (Server Operators) and an application's roles (``Reviewer``, an enterprise
        application's name). Their names, SIDs and DNs stay readable and are never searched
        for in text."""
        keep = _readable_groups(df)
        if not keep.any():
            return self._tokenise(df, GROUP_FIELDS)
        self._tokenise(df.filter(~keep), GROUP_FIELDS)  # learns the tokens of the others
        return df.with_columns(
            pl.when(pl.lit(keep))
            .then(pl.col(c))
            .otherwise(pl.col(c).replace(self._known.get(k, {})))
            .alias(c)
            for c, k in GROUP_FIELDS.items()
            if c in df.columns
        )

    def _learn_ids(self, series: pl.Series, kind: str) -> None:
        """Token ids for the ids in ``series`` that are more than a GUID: the prefix up to the
        last ``:`` kept, the rest a ``kind`` token (``csv:niche:user:`` + the username's)."""
        values = series.drop_nulls().unique()
        values = values.filter(~values.str.contains(_PURE_ID) & (values != ""))
        for value in values.to_list():
            if value in self._ids:
                continue
            prefix, _, tail = value.rpartition(":")
            # an account's id carries the account's one person token (of the whole id)
            named = self.token(kind, value if kind == "person" else tail)
            token = f"{prefix}:{named}" if prefix else named
            self._ids[value] = token
            self._pattern(value, token)

    def ids(self, df: pl.DataFrame) -> pl.DataFrame:
        """``df`` with its id columns and the ids inside its key columns replaced exactly."""
        return map_ids(df, self._ids)

    def learn_tables(self, accounts: pl.DataFrame, groups: pl.DataFrame) -> None:
        """Remember every identifying value of these accounts and groups."""
        self._learn_table_ids(accounts, groups)
        self._tokenise_accounts(accounts)
        self._tokenise_groups(groups)

    def _learn_table_ids(self, accounts: pl.DataFrame, groups: pl.DataFrame) -> None:
        if "account_id" in accounts.columns:
            self._learn_ids(accounts.get_column("account_id"), "person")
        if "group_id" in groups.columns:
            shown = groups.filter(~_readable_groups(groups))
            self._learn_ids(shown.get_column("group_id"), "group")

    # --- applying ---------------------------------------------------------------------------

    def _ordered(self) -> tuple[list[str], list[str]]:
        # longest first: with leftmost matching, a DN wins over the name inside it
        if self._cache is None or len(self._cache[0]) != len(self._patterns):
            order = sorted(range(len(self._patterns)), key=lambda i: -len(self._patterns[i]))
            self._cache = ([self._patterns[i] for i in order], [self._tokens[i] for i in order])
        return self._cache

    def _scrubbed(self, values: Iterable[str]) -> dict[str, str]:
        """Raw -> scrubbed for the values that contain a known identifier.

        Two passes, because an automaton over every known value is expensive to build with
        leftmost, case-insensitive matching (about 5 s for 250,000 values): first a plain
        search of the lower-cased values for the lower-cased patterns finds which values
        contain which patterns; then only those values are rewritten, with only those patterns.
        """
        patterns, tokens = self._ordered()
        distinct = pl.Series(sorted(set(values)), dtype=pl.String)
        # GUIDs and keys made only of them hold no name: leave them alone (a short username
        # that happens to be hex must not rewrite the inside of an object id)
        distinct = distinct.filter(~distinct.str.contains(_PURE_ID))
        if not patterns or distinct.is_empty():
            return {}
        if self._lowered is None or len(self._lowered) != len(patterns):
            self._lowered = pl.Series(patterns, dtype=pl.String).str.to_lowercase().to_list()
        found = distinct.str.to_lowercase().str.extract_many(self._lowered, overlapping=True)
        hit = found.list.len() > 0
        needed = set(found.filter(hit).explode().drop_nulls().to_list())
        if not needed:
            return {}
        keep = [i for i, low in enumerate(self._lowered) if low in needed]
        rows = distinct.filter(hit)
        out = rows.str.replace_many(
            [patterns[i] for i in keep],
            [tokens[i] for i in keep],
            ascii_case_insensitive=True,
            leftmost=True,
        )
        return {a: b for a, b in zip(rows.to_list(), out.to_list(), strict=True) if a != b}

    def _tokenise(self, df: pl.DataFrame, fields: Mapping[str, str]) -> pl.DataFrame:
        return df.with_columns(
            self._column(df.get_column(c), k).alias(c) for c, k in fields.items() if c in df.columns
        )

    def _scrub_columns(self, df: pl.DataFrame, skip: Iterable[str]) -> list[str]:
        skipped = set(skip) | _KEEP
        return [n for n, t in df.schema.items() if n not in skipped and _is_text(t)]

    def frames(
        self, items: Sequence[tuple[pl.DataFrame, Mapping[str, str]]], tokenised: int = 0
    ) -> list[pl.DataFrame]:
        """Each frame with its ``fields`` (column -> kind) tokenised (the first ``tokenised``
        frames already are) and every other text column (except fixed vocabularies) scrubbed
        of known values."""
        done = [
            (self.ids(df if i < tokenised else self._tokenise(df, fields)), fields)
            for i, (df, fields) in enumerate(items)
        ]
        todo = [(df, self._scrub_columns(df, fields)) for df, fields in done]
        values: set[str] = set()
        for df, cols in todo:
            for c in cols:
                col = df.get_column(c)
                flat = col.explode() if isinstance(col.dtype, pl.List) else col
                values.update(flat.drop_nulls().unique().to_list())
        changed = self._scrubbed(values)
        if not changed:
            return [df for df, _ in todo]
        out = []
        for df, cols in todo:
            exprs = [
                pl.col(c).list.eval(pl.element().replace(changed))
                if isinstance(df.schema[c], pl.List)
                else pl.col(c).replace(changed)
                for c in cols
            ]
            out.append(df.with_columns(exprs) if exprs else df)
        return out

    def frame(self, df: pl.DataFrame, fields: Mapping[str, str] | None = None) -> pl.DataFrame:
        """One frame (see :meth:`frames`)."""
        return self.frames([(df, fields or {})])[0]

    def texts(self, values: Iterable[str]) -> list[str]:
        """Strings scrubbed of known values (manifest unit names and details)."""
        values = list(values)
        changed = self._scrubbed(v for v in values if v)
        return [changed.get(v, v) for v in values]

    def text(self, value: str) -> str:
        return self.texts([value])[0]

    def shown_tables(
        self,
        *,
        accounts: pl.DataFrame,
        groups: pl.DataFrame,
        findings: pl.DataFrame,
        actions: pl.DataFrame,
        paths: pl.DataFrame,
    ) -> dict[str, pl.DataFrame]:
        """Pseudonymised copies of the tables a report and its exports show, by the same names."""
        # tokenising the accounts' and groups' fields (first) learns every identifying value
        self._learn_table_ids(accounts, groups)
        out = self.frames(
            [
                (self._tokenise_accounts(accounts), {**ACCOUNT_FIELDS, "sid_history": "sid"}),
                (self._tokenise_groups(groups), GROUP_FIELDS),
                (findings, {}),
                (actions, {}),
                (paths, {}),
            ],
            tokenised=2,
        )
        return dict(zip(("accounts", "groups", "findings", "actions", "paths"), out, strict=True))

    def manifest(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``manifest`` for display: unit names and details scrubbed."""
        out = dict(manifest)
        sources = []
        for src in manifest.get("sources") or []:
            units = list(src.get("units") or [])
            names = self.texts(str(u.get("name") or "") for u in units)
            details = self.texts(str(u.get("detail") or "") for u in units)
            sources.append(
                {
                    **src,
                    "units": [
                        {**u, "name": n, "detail": d}
                        for u, n, d in zip(units, names, details, strict=True)
                    ],
                }
            )
        out["sources"] = sources
        out["pseudonymised"] = {"key_id": self.key_id}
        return out

    def register(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a run's exceptions register (``exceptions.json``) for display.

        Object patterns with wildcards (``jsmith*``) name part of a person: each becomes one
        ``pattern-`` token; exact ids and names, the justification and the agreement have known
        values replaced as in any text; approvers' names become ``name-`` tokens (a display
        name of the same person gets the same token). The file's text is left out.
        """
        entries = []
        for e in snapshot.get("entries") or []:
            objects = [str(o) for o in e.get("objects") or []]
            exact = dict(zip(objects, self.texts(objects), strict=True))
            texts = self.texts([str(e.get(k) or "") for k in ("justification", "agreement")])
            entries.append(
                {
                    **e,
                    "objects": [
                        self.token("pattern", o) if any(c in o for c in "*?") else exact[o]
                        for o in objects
                    ],
                    "justification": texts[0],
                    "agreement": texts[1],
                    "approvers": [
                        {**a, "name": self.token("name", str(a.get("name") or ""))}
                        for a in e.get("approvers") or []
                    ],
                }
            )
        return {**snapshot, "entries": entries, "text": ""}


def from_settings(settings: Settings) -> Pseudonymiser:
    """The pseudonymiser for this configuration (creating the key on first use)."""
    return Pseudonymiser(load_key(key_path(settings), settings.audit.data_dir / "runs"))
