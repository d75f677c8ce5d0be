"""Commands of a split: create the movers' new group, move them into it, nest it into the
movers' parents of their own force, and take the split group out of the other force's parents.

Over the columns of :func:`accessaudit.remediation.split.describe` (``_split_*``, ``_new_*``)
and the action row (``group_id``, ``_g_name``, ``_g_scope``, ``_g_mastered``). In AD the new
group is made with New-ADGroup; for a cloud group with Microsoft Graph PowerShell, and the Graph
requests in ``graph`` (learn.microsoft.com/graph/api/group-post-groups, group-post-members,
group-delete-members).
"""

from __future__ import annotations

import polars as pl

from accessaudit.remediation.quoting import (
    Rendered,
    cat,
    group_system,
    id_text,
    ps_quote,
    quoted_list,
)

_EMPTY = pl.lit("")
#: "\x01" marks where the split group's id goes (ps_quote drops control characters)
_HERE = "\x01"


def split_group() -> Rendered:
    """The (system, summary, powershell, graph) of a split-group action."""
    cloud = pl.col("_g_mastered") == "cloud"
    nickname = cat("split", id_text(pl.col("group_id")).str.slice(0, 8))
    powershell = pl.when(cloud).then(_cloud_powershell(nickname)).otherwise(_ad_powershell())
    graph = pl.when(cloud).then(_graph(nickname))
    return Rendered(group_system(), _summary(), powershell, graph)


def _each(col: str, before: str, value: pl.Expr, after: str) -> pl.Expr:
    """One line per element of the list column ``col``: ``before``, the element as ``value``
    renders it (over ``pl.element()``), ``after``; joined."""
    return pl.col(col).list.eval(cat(before, value, after)).list.join("")


def _ad_powershell() -> pl.Expr:
    gq = ps_quote(pl.col("group_id"))
    scope = (
        pl.col("_g_scope")
        .replace({"domain-local": "DomainLocal", "global": "Global", "universal": "Universal"})
        .fill_null("Global")
    )
    description = cat("Split from ", pl.col("_g_name").fill_null("?"), " by accessaudit")
    return cat(
        "$g = New-ADGroup -Name ",
        ps_quote(pl.col("_new_name")),
        " -SamAccountName ",
        ps_quote(pl.col("_new_sam")),
        " -GroupScope ",
        scope,
        " -GroupCategory Security",
        pl.when(pl.col("_new_ou").is_not_null())
        .then(cat(" -Path ", ps_quote(pl.col("_new_ou"))))
        .otherwise(_EMPTY),
        " -Description ",
        ps_quote(description),
        " -PassThru\nAdd-ADGroupMember -Identity $g.ObjectGUID -Members ",
        quoted_list("_split_members"),
        _each(
            "_split_parents",
            "\nAdd-ADGroupMember -Identity ",
            ps_quote(pl.element()),
            " -Members $g.ObjectGUID",
        ),
        "\nRemove-ADGroupMember -Identity ",
        gq,
        " -Members ",
        quoted_list("_split_members"),
        " -Confirm:$false",
        _each(
            "_split_unnest",
            "\nRemove-ADGroupMember -Identity ",
            ps_quote(pl.element()),
            f" -Members {_HERE} -Confirm:$false",
        ),
    ).str.replace_all(_HERE, gq.fill_null(""), literal=True)


def _cloud_powershell(nickname: pl.Expr) -> pl.Expr:
    gq = ps_quote(pl.col("group_id"))
    return cat(
        "$g = New-MgGroup -DisplayName ",
        ps_quote(pl.col("_new_name")),
        " -MailEnabled:$false -MailNickname ",
        ps_quote(nickname),
        " -SecurityEnabled\nforeach ($m in ",
        quoted_list("_split_members"),
        ") { New-MgGroupMember -GroupId $g.Id -DirectoryObjectId $m; "
        "Remove-MgGroupMemberByRef -GroupId ",
        gq,
        " -DirectoryObjectId $m }",
        _each(
            "_split_parents",
            "\nNew-MgGroupMember -GroupId ",
            ps_quote(pl.element()),
            " -DirectoryObjectId $g.Id",
        ),
        _each(
            "_split_unnest",
            "\nRemove-MgGroupMemberByRef -GroupId ",
            ps_quote(pl.element()),
            f" -DirectoryObjectId {_HERE}",
        ),
    ).str.replace_all(_HERE, gq.fill_null(""), literal=True)


def _graph(nickname: pl.Expr) -> pl.Expr:
    body = pl.struct(
        displayName=pl.col("_new_name"),
        mailEnabled=pl.lit(False),
        mailNickname=nickname,
        securityEnabled=pl.lit(True),
    ).struct.json_encode()
    ref = '{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/'
    gid = id_text(pl.col("group_id"))
    members = pl.col("_split_members").list.eval(id_text(pl.element())).list.join(", ")
    return cat(
        "POST /groups ",
        body,
        "\nfor each of [",
        members,
        f']: POST /groups/{{new id}}/members/$ref {ref}{{member}}"}}; DELETE /groups/',
        gid,
        "/members/{member}/$ref",
        _each(
            "_split_parents",
            "\nPOST /groups/",
            id_text(pl.element()),
            f'/members/$ref {ref}{{new id}}"}}',
        ),
        _each(
            "_split_unnest", "\nDELETE /groups/", id_text(pl.element()), f"/members/{_HERE}/$ref"
        ),
    ).str.replace_all(_HERE, gid.fill_null(""), literal=True)


def _summary() -> pl.Expr:
    n_parents = pl.col("_split_parents").list.len()
    n_leave = pl.col("_split_unnest").list.len()
    joining = cat(
        " (joining ", n_parents.cast(pl.String), " parent group(s) of ", pl.col("_split_org"), ")"
    )
    leaving = cat(
        "; un-nest ",
        pl.col("_g_name").fill_null("?"),
        " from ",
        n_leave.cast(pl.String),
        " group(s) of the other force",
    )
    return cat(
        "Split mixed group ",
        pl.col("_g_name").fill_null("?"),
        ": move ",
        pl.col("_split_members").list.len().cast(pl.String),
        " member(s) of ",
        pl.col("_split_org").fill_null("?"),
        " to new group ",
        pl.col("_new_name").fill_null("?"),
        pl.when(n_parents > 0).then(joining).otherwise(_EMPTY),
        pl.when(n_leave > 0).then(leaving).otherwise(_EMPTY),
    )
