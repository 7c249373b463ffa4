"""What the SLA pipes keep of ticket versions' targets (``sla_memo.TargetStates``: ``sla_attainment``'s
states, ``sla_at_risk``'s listings), saved in the data directory when the server stops (and once it
has prepared its SLA pipes), and taken up again when it starts: at a million tickets a restarted
server would otherwise evaluate every ticket again (seconds) before its first SLA answer, and list
the at-risk targets of every unresolved ticket again (~1.2 s).

A kept version stays exact across a restart for the reasons it is exact within one process (its
ticket's ``seq`` and the SLA setup's fingerprint are checked on every use, and the evaluation times
it may serve are instants, saved with it), provided that

- the code that evaluated it is the code that reads it: the files carry a fingerprint of the
  package's source, and are ignored when it differs (an upgrade evaluates again once);
- a ``seq`` still names the same ticket version: sequence numbers only grow, so files that name a
  version past the store's highest ``seq`` (a store put back from an older copy) are ignored.

Each workspace has two Arrow IPC files (its versions, and their targets) written under temporary
names, then renamed; both carry the same random generation, and a pair that does not match (a stop
between the two renames) is ignored.  A file that cannot be read is ignored too: the files only
save time."""

from __future__ import annotations

import hashlib
import logging
import secrets
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

import supportlens
from supportlens.analytics.sla_memo import KeptVersions, TargetStates

log = logging.getLogger(__name__)

_FORMAT = b"2"  # 2: each version's valid_until_ms saved too
_VERSIONS = ".versions.arrow"
_TARGETS = ".targets.arrow"


@cache
def code_fingerprint() -> bytes:
    """A hash of every source file of the package: any change to how targets are evaluated (or
    encoded) changes it."""
    digest = hashlib.sha256(_FORMAT)
    root = Path(supportlens.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest().encode()


def save_target_states(states: TargetStates, directory: Path) -> int:
    """Writes the kept versions of every workspace whose files do not hold them already; returns
    how many workspaces were written."""
    saved = 0
    for workspace_id, kept in states.unsaved_versions().items():
        directory.mkdir(parents=True, exist_ok=True)
        generation = secrets.token_hex(8).encode()
        metadata = {b"code": code_fingerprint(), b"generation": generation, b"setup": kept.setup.encode()}
        # Saved compacted: each version's targets start where the one before ends.
        compact = kept.compacted()
        versions = pa.table(
            {
                "seq": compact.seqs,
                "valid_from_ms": compact.valid_from_ms,
                "valid_until_ms": compact.valid_until_ms,
                "start": compact.first,
            }
        ).replace_schema_metadata(metadata)
        # One dictionary per column: an IPC file holds no replacement of a dictionary.
        targets = compact.targets.unify_dictionaries().combine_chunks().replace_schema_metadata(metadata)
        for suffix, table in ((_VERSIONS, versions), (_TARGETS, targets)):
            final = directory / f"{workspace_id}{suffix}"
            partial = final.with_name(final.name + ".partial")
            with pa.OSFile(str(partial), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            partial.replace(final)
        states.saved(workspace_id, kept)
        saved += 1
    return saved


def load_target_states(states: TargetStates, directory: Path, *, last_seq: int) -> int:
    """Takes up the saved versions of each workspace that are still exact (see above) for a store
    whose highest ``seq`` is ``last_seq``; returns how many workspaces were taken up."""
    loaded = 0
    for path in sorted(directory.glob(f"*{_VERSIONS}")) if directory.is_dir() else []:
        workspace_id = path.name.removesuffix(_VERSIONS)
        try:
            kept = _read(path, directory / f"{workspace_id}{_TARGETS}", states.schema, last_seq)
        except (OSError, pa.ArrowException, KeyError, ValueError):
            log.warning("ignoring unreadable saved SLA states of workspace %s", workspace_id, exc_info=True)
            continue
        if kept is not None:
            states.take_up(workspace_id, kept)
            loaded += 1
    return loaded


def _read(versions_path: Path, targets_path: Path, schema: pa.Schema, last_seq: int) -> KeptVersions | None:
    with pa.OSFile(str(versions_path)) as source:  # read into memory: a later save replaces the file
        versions = ipc.open_file(source).read_all()
    with pa.OSFile(str(targets_path)) as source:
        targets = ipc.open_file(source).read_all()
    meta, other = versions.schema.metadata or {}, targets.schema.metadata or {}
    if meta.get(b"code") != code_fingerprint() or meta.get(b"generation") != other.get(b"generation"):
        return None
    return KeptVersions.of_columns(
        meta[b"setup"].decode(),
        versions.column("seq"),
        versions.column("valid_from_ms"),
        versions.column("valid_until_ms"),
        versions.column("start"),
        targets.replace_schema_metadata(None).cast(schema.remove(0)),
        last_seq=last_seq,
    )
