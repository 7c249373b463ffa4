"""A workspace's configuration: business calendars, custom status names and the activity exports it
imported.  Like workspaces and tokens it is small and updated in place, so it lives in the same SQLite
file (its own connection and tables); every method is scoped by workspace id."""

from __future__ import annotations

import sqlite3
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from supportlens.auth.repository import Conflict, NotFound
from supportlens.configuration.calendars import CalendarDefinition, to_schedule
from supportlens.configuration.sla import SlaPolicyDefinition, builtin_policy
from supportlens.domain.calendars import CalendarChoice, Schedule, default_business_hours
from supportlens.domain.models import normalize_label
from supportlens.domain.sla import PolicySet
from supportlens.domain.statuses import DEFAULT_STATUS_CATEGORIES, StatusCategory, StatusMap
from supportlens.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calendars (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    definition TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS calendars_one_default ON calendars (workspace_id) WHERE is_default;
CREATE TABLE IF NOT EXISTS calendar_groups (
    workspace_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    calendar_id TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, group_id)
);
CREATE INDEX IF NOT EXISTS calendar_groups_calendar ON calendar_groups (calendar_id);
CREATE TABLE IF NOT EXISTS status_names (
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
CREATE TABLE IF NOT EXISTS activity_imports (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    start_at TEXT,
    end_at TEXT,
    declared_count INTEGER,
    events INTEGER NOT NULL,
    ignored INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activity_imports_workspace ON activity_imports (workspace_id, imported_at);
CREATE TABLE IF NOT EXISTS sla_policies (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    position INTEGER NOT NULL,
    definition TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS sla_policies_one_default ON sla_policies (workspace_id) WHERE is_default;
"""

# Status names a workspace may declare: far more than any helpdesk has, few enough to keep every
# status-name lookup and the per-status JSON of ticket_time_metrics small.
MAX_STATUS_NAMES = 1000
MAX_STATUS_NAME_LENGTH = 100
_CALENDAR_COLUMNS = "id, workspace_id, definition, is_default, created_at, updated_at"
_POLICY_COLUMNS = "id, workspace_id, position, definition, is_default, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class StoredCalendar:
    """A calendar as stored; ``definition.default`` and ``definition.groups`` are its current default
    flag and group assignments (the tables hold them, not the stored JSON)."""

    id: str
    workspace_id: str
    definition: CalendarDefinition
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """An SLA policy as stored; ``definition.default`` is its current default flag (a column)."""

    id: str
    workspace_id: str
    position: int  # the workspace's policies are tried in this order
    definition: SlaPolicyDefinition
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One imported activity export: its window, what its metadata declared and what became of it
    (``events`` written, activities ``ignored`` and ``rejected``)."""

    kind: str  # e.g. "freshdesk-activities"
    file_name: str
    start_at: datetime | None
    end_at: datetime | None
    declared_count: int | None
    events: int
    ignored: int
    rejected: int
    imported_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def _iso(moment: datetime | None) -> str | None:
    """UTC at a fixed width, so that SQL's max() over the text is the latest instant; naive is UTC."""
    if moment is None:
        return None
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _stored_json(definition: CalendarDefinition) -> str:
    """The definition without ``default`` and ``groups``: those live in their own columns and table."""
    return definition.model_dump_json(exclude={"default", "groups"})


class ConfigurationRepository(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        self._policy_sets: dict[str, PolicySet] = {}

    # Calendars

    def _load(self, conn: sqlite3.Connection, row: tuple[str, str, str, int, str, str]) -> StoredCalendar:
        groups = [
            group
            for (group,) in conn.execute(
                "SELECT group_id FROM calendar_groups WHERE calendar_id = ? ORDER BY group_id", (row[0],)
            )
        ]
        definition = CalendarDefinition.model_validate_json(row[2]).model_copy(
            update={"default": bool(row[3]), "groups": groups}
        )
        return StoredCalendar(
            row[0], row[1], definition, datetime.fromisoformat(row[4]), datetime.fromisoformat(row[5])
        )

    def _get(self, conn: sqlite3.Connection, workspace_id: str, calendar_id: str) -> StoredCalendar:
        row = conn.execute(
            f"SELECT {_CALENDAR_COLUMNS} FROM calendars WHERE workspace_id = ? AND id = ?",
            (workspace_id, calendar_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no calendar {calendar_id!r} in this workspace")
        return self._load(conn, row)

    @staticmethod
    def _make_default(conn: sqlite3.Connection, workspace_id: str, calendar_id: str) -> None:
        conn.execute(
            "UPDATE calendars SET is_default = 0 WHERE workspace_id = ? AND is_default AND id != ?",
            (workspace_id, calendar_id),
        )
        conn.execute("UPDATE calendars SET is_default = 1 WHERE id = ?", (calendar_id,))

    @staticmethod
    def _assign(conn: sqlite3.Connection, workspace_id: str, groups: list[str], calendar_id: str) -> None:
        conn.executemany(
            "INSERT INTO calendar_groups VALUES (?, ?, ?) ON CONFLICT (workspace_id, group_id)"
            " DO UPDATE SET calendar_id = excluded.calendar_id",
            [(workspace_id, group, calendar_id) for group in groups],
        )

    @staticmethod
    def _duplicate(name: str) -> Conflict:
        return Conflict(f"a calendar named {name!r} already exists in this workspace")

    def create_calendar(self, workspace_id: str, definition: CalendarDefinition) -> StoredCalendar:
        """Store a new calendar; the workspace's first calendar is its default whatever ``default`` says.
        Its groups move to it from any other calendar."""
        calendar_id = uuid.uuid4().hex[:12]
        now = datetime.now(UTC).isoformat()
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO calendars VALUES (?, ?, ?, ?, 0, ?, ?)",
                    (calendar_id, workspace_id, definition.name, _stored_json(definition), now, now),
                )
            except sqlite3.IntegrityError:
                raise self._duplicate(definition.name) from None
            has_default = conn.execute(
                "SELECT 1 FROM calendars WHERE workspace_id = ? AND is_default", (workspace_id,)
            ).fetchone()
            if definition.default or has_default is None:
                self._make_default(conn, workspace_id, calendar_id)
            self._assign(conn, workspace_id, definition.groups, calendar_id)
            return self._get(conn, workspace_id, calendar_id)

    def calendar(self, workspace_id: str, calendar_id: str) -> StoredCalendar:
        with self._lock:
            return self._get(self._conn, workspace_id, calendar_id)

    def calendars(self, workspace_id: str) -> list[StoredCalendar]:
        """The workspace's calendars, by name."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CALENDAR_COLUMNS} FROM calendars WHERE workspace_id = ? ORDER BY name, id",
                (workspace_id,),
            ).fetchall()
            return [self._load(self._conn, row) for row in rows]

    def replace_calendar(
        self, workspace_id: str, calendar_id: str, definition: CalendarDefinition
    ) -> StoredCalendar:
        """Replace the calendar's name, versions and groups.  ``default: true`` makes it the default;
        ``false`` leaves the flag as it is, since a workspace always keeps exactly one default."""
        with self._transaction() as conn:
            self._get(conn, workspace_id, calendar_id)
            try:
                conn.execute(
                    "UPDATE calendars SET name = ?, definition = ?, updated_at = ? WHERE id = ?",
                    (definition.name, _stored_json(definition), datetime.now(UTC).isoformat(), calendar_id),
                )
            except sqlite3.IntegrityError:
                raise self._duplicate(definition.name) from None
            if definition.default:
                self._make_default(conn, workspace_id, calendar_id)
            conn.execute("DELETE FROM calendar_groups WHERE calendar_id = ?", (calendar_id,))
            self._assign(conn, workspace_id, definition.groups, calendar_id)
            return self._get(conn, workspace_id, calendar_id)

    def delete_calendar(self, workspace_id: str, calendar_id: str) -> None:
        """Delete a calendar and its group assignments.  The default goes only when it is the last one
        (Conflict otherwise): picking a successor silently would change every business-time figure."""
        with self._transaction() as conn:
            stored = self._get(conn, workspace_id, calendar_id)
            if stored.definition.default:
                others = conn.execute(
                    "SELECT count(*) FROM calendars WHERE workspace_id = ? AND id != ?",
                    (workspace_id, calendar_id),
                ).fetchone()[0]
                if others:
                    raise Conflict(
                        f"calendar {stored.name!r} is the workspace's default; make another calendar "
                        "the default before deleting it"
                    )
            conn.execute("DELETE FROM calendars WHERE id = ?", (calendar_id,))

    def set_default_calendar(self, workspace_id: str, calendar_id: str) -> None:
        with self._transaction() as conn:
            self._get(conn, workspace_id, calendar_id)
            self._make_default(conn, workspace_id, calendar_id)

    def assign_group(self, workspace_id: str, group_id: str, calendar_id: str) -> None:
        """Tickets of ``group_id`` use this calendar from now on (instead of the default)."""
        if not group_id.strip():
            raise ValueError("a group id must not be blank")
        with self._transaction() as conn:
            self._get(conn, workspace_id, calendar_id)
            self._assign(conn, workspace_id, [group_id.strip()], calendar_id)

    def business_calendar(self, workspace_id: str, timezone: str, group_id: str | None = None) -> Schedule:
        """The schedule that applies: the group's calendar, else the workspace's default, else Monday to
        Friday 09:00-17:00 in ``timezone`` (the workspace's reporting timezone)."""
        choice = self.calendar_choice(workspace_id, timezone)
        return choice.schedules[choice.index_of(group_id)]

    def calendar_choice(self, workspace_id: str, timezone: str) -> CalendarChoice:
        """Every calendar of the workspace, its default first (else Monday to Friday 09:00-17:00 in
        ``timezone``, the reporting timezone), and the calendar of each group that has one."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, definition, is_default FROM calendars WHERE workspace_id = ? ORDER BY id",
                (workspace_id,),
            ).fetchall()
            groups = self._conn.execute(
                "SELECT group_id, calendar_id FROM calendar_groups WHERE workspace_id = ?", (workspace_id,)
            ).fetchall()
        schedules: list[Schedule] = [default_business_hours(timezone)]
        ids: list[str | None] = [None]
        for calendar_id, definition, is_default in rows:
            schedule = to_schedule(CalendarDefinition.model_validate_json(definition))
            schedules.append(schedule)
            ids.append(str(calendar_id))
            if is_default:
                schedules[0] = schedule
        index = {calendar_id: position for position, calendar_id in enumerate(ids)}
        return CalendarChoice(
            tuple(schedules), tuple(ids), {str(group): index[calendar_id] for group, calendar_id in groups}
        )

    # SLA policies

    @staticmethod
    def _load_policy(row: tuple[str, str, int, str, int, str, str]) -> StoredPolicy:
        definition = SlaPolicyDefinition.model_validate_json(row[3]).model_copy(
            update={"default": bool(row[4])}
        )
        return StoredPolicy(
            row[0], row[1], row[2], definition, datetime.fromisoformat(row[5]), datetime.fromisoformat(row[6])
        )

    def _get_policy(self, conn: sqlite3.Connection, workspace_id: str, policy_id: str) -> StoredPolicy:
        row = conn.execute(
            f"SELECT {_POLICY_COLUMNS} FROM sla_policies WHERE workspace_id = ? AND id = ?",
            (workspace_id, policy_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no SLA policy {policy_id!r} in this workspace")
        return self._load_policy(row)

    @staticmethod
    def _set_policy_default(
        conn: sqlite3.Connection, workspace_id: str, policy_id: str, default: bool
    ) -> None:
        """One default per workspace: making a policy the default takes the flag from any other."""
        if default:
            conn.execute(
                "UPDATE sla_policies SET is_default = 0 WHERE workspace_id = ? AND is_default AND id != ?",
                (workspace_id, policy_id),
            )
        conn.execute("UPDATE sla_policies SET is_default = ? WHERE id = ?", (int(default), policy_id))

    @staticmethod
    def _policy_json(definition: SlaPolicyDefinition) -> str:
        return definition.model_dump_json(exclude={"default"})

    def create_policy(self, workspace_id: str, definition: SlaPolicyDefinition) -> StoredPolicy:
        """Store a new policy after the workspace's others (Conflict on a duplicate name)."""
        policy_id = uuid.uuid4().hex[:12]
        now = datetime.now(UTC).isoformat()
        with self._transaction() as conn:
            (position,) = conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM sla_policies WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
            try:
                conn.execute(
                    "INSERT INTO sla_policies VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                    (
                        policy_id,
                        workspace_id,
                        definition.name,
                        position,
                        self._policy_json(definition),
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise self._duplicate_policy(definition.name) from None
            self._set_policy_default(conn, workspace_id, policy_id, definition.default)
            return self._get_policy(conn, workspace_id, policy_id)

    @staticmethod
    def _duplicate_policy(name: str) -> Conflict:
        return Conflict(f"an SLA policy named {name!r} already exists in this workspace")

    def policy(self, workspace_id: str, policy_id: str) -> StoredPolicy:
        with self._lock:
            return self._get_policy(self._conn, workspace_id, policy_id)

    def policies(self, workspace_id: str) -> list[StoredPolicy]:
        """The workspace's policies in the order they are tried."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_POLICY_COLUMNS} FROM sla_policies WHERE workspace_id = ? ORDER BY position, id",
                (workspace_id,),
            ).fetchall()
        return [self._load_policy(row) for row in rows]

    def replace_policy(
        self, workspace_id: str, policy_id: str, definition: SlaPolicyDefinition
    ) -> StoredPolicy:
        """Replace everything but the position; ``default`` is the flag as given (false clears it:
        the built-in policy is there to fall back on)."""
        with self._transaction() as conn:
            self._get_policy(conn, workspace_id, policy_id)
            try:
                conn.execute(
                    "UPDATE sla_policies SET name = ?, definition = ?, updated_at = ? WHERE id = ?",
                    (
                        definition.name,
                        self._policy_json(definition),
                        datetime.now(UTC).isoformat(),
                        policy_id,
                    ),
                )
            except sqlite3.IntegrityError:
                raise self._duplicate_policy(definition.name) from None
            self._set_policy_default(conn, workspace_id, policy_id, definition.default)
            return self._get_policy(conn, workspace_id, policy_id)

    def delete_policy(self, workspace_id: str, policy_id: str) -> None:
        """Delete a policy; without a default of its own the workspace falls back to the built-in one."""
        with self._transaction() as conn:
            self._get_policy(conn, workspace_id, policy_id)
            conn.execute("DELETE FROM sla_policies WHERE id = ?", (policy_id,))

    def set_policy_order(self, workspace_id: str, ids: list[str]) -> list[StoredPolicy]:
        """Try the policies in the order of ``ids``, which must list each of the workspace's policies
        once (ValueError otherwise, naming what is wrong)."""
        with self._transaction() as conn:
            known = {
                policy_id
                for (policy_id,) in conn.execute(
                    "SELECT id FROM sla_policies WHERE workspace_id = ?", (workspace_id,)
                )
            }
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            unknown = [i for i in ids if i not in known]
            missing = sorted(known - set(ids))
            for problem, found in (("listed twice", duplicates), ("unknown", unknown), ("missing", missing)):
                if found:
                    raise ValueError(f"every policy of the workspace must be listed once; {problem}: {found}")
            conn.executemany(
                "UPDATE sla_policies SET position = ? WHERE id = ?", [(i, pid) for i, pid in enumerate(ids)]
            )
        return self.policies(workspace_id)

    def policy_set(self, workspace_id: str) -> PolicySet:
        """The workspace's policies in order, and its default policy, else the built-in one."""
        stored = self.policies(workspace_id)
        default = next((p.definition.to_domain(p.id) for p in stored if p.definition.default), None)
        built = PolicySet(
            tuple(p.definition.to_domain(p.id) for p in stored if not p.definition.default),
            default or builtin_policy(),
        )
        # The same policies as last time: that set, whose choices per ticket attributes are made.
        with self._lock:
            if self._policy_sets.get(workspace_id) == built:
                return self._policy_sets[workspace_id]
            self._policy_sets[workspace_id] = built
        return built

    # Status names

    def status_names(self, workspace_id: str) -> dict[str, StatusCategory]:
        """The workspace's own names (normalized) and their categories."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, category FROM status_names WHERE workspace_id = ? ORDER BY name",
                (workspace_id,),
            ).fetchall()
        return {name: StatusCategory(category) for name, category in rows}

    def known_status_names(self, workspace_id: str) -> list[tuple[str, StatusCategory, bool]]:
        """Every name the workspace's status map knows, by name: (name, category, whether custom)."""
        names = {name: (category, False) for name, category in DEFAULT_STATUS_CATEGORIES.items()}
        names.update({name: (category, True) for name, category in self.status_names(workspace_id).items()})
        return [(name, category, custom) for name, (category, custom) in sorted(names.items())]

    def status_map(self, workspace_id: str) -> StatusMap:
        return StatusMap(self.status_names(workspace_id))

    def set_status_names(self, workspace_id: str, mapping: Mapping[str, StatusCategory]) -> None:
        """Replace all the workspace's own names.  Names are normalized like stored statuses (trimmed,
        lower-case); a blank, overlong or control-character name, more than MAX_STATUS_NAMES names,
        or two spellings of one name with different categories, is a ValueError."""
        if len(mapping) > MAX_STATUS_NAMES:
            raise ValueError(f"at most {MAX_STATUS_NAMES} status names, got {len(mapping)}")
        names: dict[str, StatusCategory] = {}
        for raw, category in mapping.items():
            name = normalize_label(raw)
            if name is None:
                raise ValueError("a status name must not be blank")
            if len(name) > MAX_STATUS_NAME_LENGTH:
                raise ValueError(
                    f"a status name has at most {MAX_STATUS_NAME_LENGTH} characters: {name[:20]!r}..."
                )
            if any(unicodedata.category(character) == "Cc" for character in name):
                raise ValueError(f"status {name!r} contains a control character")
            category = StatusCategory(category)
            if names.get(name, category) != category:
                raise ValueError(f"status {name!r} is given twice with different categories")
            names[name] = category
        with self._transaction() as conn:
            conn.execute("DELETE FROM status_names WHERE workspace_id = ?", (workspace_id,))
            conn.executemany(
                "INSERT INTO status_names VALUES (?, ?, ?)",
                [(workspace_id, name, category.value) for name, category in names.items()],
            )

    # Activity imports

    def record_import(self, workspace_id: str, record: ImportRecord) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO activity_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    workspace_id,
                    record.kind,
                    record.file_name,
                    _iso(record.start_at),
                    _iso(record.end_at),
                    record.declared_count,
                    record.events,
                    record.ignored,
                    record.rejected,
                    _iso(record.imported_at),
                ),
            )

    def imports(self, workspace_id: str) -> list[ImportRecord]:
        """The workspace's imports, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT kind, file_name, start_at, end_at, declared_count, events, ignored, rejected,"
                " imported_at, id FROM activity_imports WHERE workspace_id = ? ORDER BY imported_at, id",
                (workspace_id,),
            ).fetchall()
        return [
            ImportRecord(
                kind=row[0],
                file_name=row[1],
                start_at=_instant(row[2]),
                end_at=_instant(row[3]),
                declared_count=row[4],
                events=row[5],
                ignored=row[6],
                rejected=row[7],
                imported_at=datetime.fromisoformat(row[8]),
                id=row[9],
            )
            for row in rows
        ]

    def latest_export_end(self, workspace_id: str) -> datetime | None:
        """The latest ``end_at`` over the workspace's imports: where ``as_of=export_end`` evaluates."""
        with self._lock:
            row = self._conn.execute(
                "SELECT max(end_at) FROM activity_imports WHERE workspace_id = ?", (workspace_id,)
            ).fetchone()
        return _instant(row[0])
