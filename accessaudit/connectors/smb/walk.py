"""Walk one share breadth-first to a depth, reading each folder's descriptor and children.

Folders are read in order of depth, :data:`IN_FLIGHT` at a time; a folder whose listing is
refused has unknown children: it is recorded (``listed`` false, with the reason) and the share
is incomplete below it, never "empty". A folder at the configured depth is read but not
listed further (``depth`` counts levels below the share's root, which is depth 0). Files are
read only when configured, each with its own READ_CONTROL open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from smbprotocol.tree import TreeConnect

from accessaudit.connectors.smb.client import SmbReader

#: Folders whose compounds may be sent before the first answer is read (5 requests each,
#: within the credits the server granted: Samba's window is 64 with smbprotocol).
IN_FLIGHT = 16


@dataclass
class Walked:
    """One share's folders in walk order (parallel lists; the root is index 0)."""

    paths: list[str] = field(default_factory=list)  # relative, "\\"-separated; "" = root
    parents: list[int | None] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    descriptors: list[bytes | None] = field(default_factory=list)
    listed: list[bool] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    is_file: list[bool] = field(default_factory=list)

    def add(
        self,
        path: str,
        parent: int | None,
        depth: int,
        descriptor: bytes | None,
        listed: bool,
        error: str | None,
        is_file: bool = False,
    ) -> int:
        self.paths.append(path)
        self.parents.append(parent)
        self.depths.append(depth)
        self.descriptors.append(descriptor)
        self.listed.append(listed)
        self.errors.append(error)
        self.is_file.append(is_file)
        return len(self.paths) - 1


def walk(
    reader: SmbReader,
    tree: TreeConnect,
    max_depth: int,
    *,
    files: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Walked:
    """Every folder of the share down to ``max_depth`` (and files, if asked)."""
    out = Walked()
    queue: deque[tuple[str, int | None, int]] = deque([("", None, 0)])
    while queue:
        batch = [queue.popleft() for _ in range(min(len(queue), IN_FLIGHT))]
        read = reader.folders(tree, [path for path, _, _ in batch])
        for (path, parent, depth), folder in zip(batch, read, strict=True):
            listed = folder.children is not None
            index = out.add(path, parent, depth, folder.descriptor, listed, folder.error)
            if progress and len(out.paths) % 1000 == 0:
                progress(len(out.paths))
            if folder.children is None or depth >= max_depth:
                continue
            for name, is_dir in sorted(folder.children):
                child = f"{path}\\{name}" if path else name
                if is_dir:
                    queue.append((child, index, depth + 1))
                elif files:
                    got = reader.file_descriptor(tree, child)
                    out.add(child, index, depth + 1, got.descriptor, True, got.error, True)
    return out
