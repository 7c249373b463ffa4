"""Deterministic, realistic customer-support tickets for the demo workspace, tests and benchmarks.

Everything is vectorized with numpy: the simulation draws whole columns at once (several million
tickets per second), and strings are only built at the end, from small pools.  The same
:class:`DemoConfig` always gives the same tickets (``numpy.random.default_rng(seed)``).

The desk being simulated:

* Arrivals follow the local hour of day and weekday of the support team (``config.timezone``):
  busy in business hours, quiet at night and much quieter at weekends, with a slight growth over
  the period, day-to-day noise and a few short incident surges (mostly technical / bug tickets).
* Categories have different frequencies; priority depends on the category (bugs are urgent more
  often, feature requests almost never), enterprise customers and incidents escalate it.
  Channels depend on the category; phone is not staffed out of hours and chat is often offline.
* Customers are heavy-tailed (a few file many tickets); agents differ in speed, workload,
  specialty and in how satisfied their customers are.
* First response time is lognormal by priority, channel and agent; out of business hours most
  non-urgent tickets wait for the next opening.  Resolution time (after the first response) is
  lognormal by priority, category (bugs and feature requests are slow) and agent; chat and phone
  tickets are often solved at first contact.
* A few tickets fall through the cracks (never answered; some are closed without a reply),
  feature requests and some bugs stay on hold, and recent tickets are naturally still new or
  unresolved because their timestamps would fall after ``config.end``.
* About 40 % of the resolved tickets are rated; the score (1-5) falls as resolution time grows.

Invariants: no timestamp after ``config.end``; ``created_at <= first_response_at``,
``created_at <= resolved_at`` and, when both are set, ``first_response_at <= resolved_at``;
status ``resolved``/``closed`` exactly when ``resolved_at`` is set, ``new`` exactly when there is
neither a first response nor a resolution; only resolved tickets are rated; ``updated_at`` is the
latest of the ticket's timestamps; all timestamps are whole seconds, UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from supportlens.domain.models import SEED_SNAPSHOT_FIELDS

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "COLUMNS",
    "PRIORITIES",
    "STATUSES",
    "DemoConfig",
    "generate_columns",
    "generate_events",
]

CATEGORIES: Final[tuple[str, ...]] = ("billing", "technical", "account", "shipping", "feature_request", "bug")
PRIORITIES: Final[tuple[str, ...]] = ("urgent", "high", "medium", "low")
STATUSES: Final[tuple[str, ...]] = ("new", "open", "pending", "on_hold", "resolved", "closed")
CHANNELS: Final[tuple[str, ...]] = ("email", "chat", "phone", "web")

# Column order of generate_columns and key order of the generate_events dicts.
COLUMNS: Final[tuple[str, ...]] = SEED_SNAPSHOT_FIELDS

Column = npt.NDArray[Any] | list[list[str]]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]
Codes = npt.NDArray[np.signedinteger[Any]]
I32 = npt.NDArray[np.int32]

_HOUR: Final = 3600
_TABLE_MAX_OUTCOMES: Final = 16_384  # larger distributions are sampled by binary search
_DAY: Final = 86_400

# ---------------------------------------------------------------------------------------------
# The desk's parameters.  Indexes follow CATEGORIES, PRIORITIES, STATUSES and CHANNELS.
# ---------------------------------------------------------------------------------------------

# Relative arrival rate by local hour (0-23) and local weekday (Monday = 0).
_HOUR_WEIGHTS: Final = np.array(
    [0.10, 0.07, 0.05, 0.05, 0.06, 0.10, 0.20, 0.40, 0.75, 1.00, 1.10, 1.10,
     0.92, 1.00, 1.05, 1.00, 0.90, 0.75, 0.55, 0.45, 0.38, 0.30, 0.22, 0.15]
)  # fmt: skip
_WEEKDAY_WEIGHTS: Final = np.array([1.15, 1.08, 1.02, 0.98, 0.85, 0.30, 0.25])
_BUSINESS_HOURS: Final = (8, 18)  # staffed Monday to Friday, local time
_GROWTH: Final = 0.25  # arrival rate at the end of the period relative to the start: 1 + _GROWTH
_DAY_NOISE_SIGMA: Final = 0.12
_INCIDENT_EVERY_DAYS: Final = 45.0
_INCIDENT_HOURS: Final = (1, 6)  # duration range of an incident surge
_INCIDENT_SURGE: Final = (2.0, 4.0)  # arrival-rate multiplier range during an incident

_CATEGORY_P: Final = np.array(
    [
        [0.21, 0.27, 0.16, 0.14, 0.09, 0.13],  # normal
        [0.05, 0.45, 0.08, 0.04, 0.03, 0.35],  # during an incident
    ]
)
_PRIORITY_P: Final = np.array(
    [
        [0.03, 0.17, 0.50, 0.30],  # billing
        [0.07, 0.23, 0.45, 0.25],  # technical
        [0.03, 0.12, 0.45, 0.40],  # account
        [0.02, 0.15, 0.53, 0.30],  # shipping
        [0.00, 0.04, 0.36, 0.60],  # feature_request
        [0.10, 0.27, 0.43, 0.20],  # bug
    ]
)
_CHANNEL_P: Final = np.array(
    [
        [0.42, 0.25, 0.15, 0.18],  # billing
        [0.35, 0.30, 0.10, 0.25],  # technical
        [0.38, 0.32, 0.12, 0.18],  # account
        [0.40, 0.28, 0.17, 0.15],  # shipping
        [0.45, 0.12, 0.03, 0.40],  # feature_request
        [0.38, 0.17, 0.05, 0.40],  # bug
    ]
)
_ENTERPRISE_SHARE: Final = 0.12
_ENTERPRISE_ESCALATION: Final = 0.20
_INCIDENT_ESCALATION: Final = 0.35

# First response: lognormal around a median by priority, times channel and agent factors.
_FIRST_RESPONSE_MEDIAN_S: Final = np.array([12 * 60, 50 * 60, 3.5 * _HOUR, 8 * _HOUR])
_FIRST_RESPONSE_SIGMA: Final = 0.8
_CHANNEL_RESPONSE_FACTOR: Final = np.array([1.0, 0.12, 0.05, 1.1])
_MIN_FIRST_RESPONSE_S: Final = 20
# Out of hours, the on-call crew takes this share by priority; the others wait for the opening and
# the morning backlog (exponential, mean by priority).
_ON_CALL_SHARE: Final = np.array([1.0, 0.6, 0.2, 0.1])
_BACKLOG_MEAN_S: Final = np.array([0.0, 0.5 * _HOUR, 1.5 * _HOUR, 2.5 * _HOUR])

# Resolution, counted from the first response.
_RESOLUTION_MEDIAN_S: Final = np.array([3 * _HOUR, 10 * _HOUR, 26 * _HOUR, 54 * _HOUR])
_CATEGORY_RESOLUTION_FACTOR: Final = np.array([0.8, 1.2, 0.6, 1.5, 5.0, 3.5])
_RESOLUTION_SIGMA: Final = 1.1
_MIN_RESOLUTION_S: Final = 60
_FIRST_CONTACT_P: Final = np.array([0.08, 0.35, 0.45, 0.06])  # by channel
_FIRST_CONTACT_CATEGORY_FACTOR: Final = np.array([1.0, 0.7, 1.2, 0.6, 0.3, 0.2])
_FIRST_CONTACT_MEDIAN_S: Final = 6 * 60
_NEVER_RESOLVED_P: Final = np.array([0.005, 0.01, 0.005, 0.01, 0.25, 0.04])  # parked for good

# Tickets nobody ever answers; some of them get closed anyway (spam, duplicates, "never mind").
_DROPPED_P: Final = 0.034
_DROPPED_CLOSED_P: Final = 0.5
_DROPPED_CLOSE_MEDIAN_S: Final = 2 * _DAY

# Open tickets: open / pending (waiting on the customer) / on_hold (waiting on a third party).
_OPEN_STATUS_P: Final = np.array(
    [
        [0.55, 0.35, 0.10],  # billing
        [0.50, 0.35, 0.15],  # technical
        [0.55, 0.38, 0.07],  # account
        [0.40, 0.35, 0.25],  # shipping
        [0.20, 0.20, 0.60],  # feature_request
        [0.35, 0.25, 0.40],  # bug
    ]
)
_AUTO_CLOSE_AFTER_S: Final = 4 * _DAY  # resolved tickets are closed after this ...
_AUTO_CLOSE_P: Final = 0.93  # ... on most desks

_RATED_P: Final = 0.40
_SATISFACTION_BASE: Final = 5.3
_SATISFACTION_PER_DECADE_RESOLUTION: Final = -0.65  # per factor 10 of (1 + hours to resolve)
_SATISFACTION_PER_DECADE_RESPONSE: Final = -0.2  # per factor 10 of (1 + hours to first response)
_SATISFACTION_NOISE: Final = 1.1

# Issues per category: (primary tag, weight, subjects).  {order} / {invoice} / {month} are filled
# with a few values each, so subjects vary without building a string per ticket.
_ISSUES: Final[dict[str, tuple[tuple[str, float, tuple[str, ...]], ...]]] = {
    "billing": (
        ("duplicate_charge", 2.0, ("Charged twice this month", "Duplicate charge on my card",
                                   "Double billing on invoice {invoice}")),
        ("refund", 2.0, ("Refund request for order {order}", "When will I get my refund?",
                         "Requesting a refund for unused seats")),
        ("invoice", 1.5, ("Need a copy of invoice {invoice}", "Invoice {invoice} shows the wrong address",
                          "VAT number missing on invoice", "Invoice for {month} not received")),
        ("payment_method", 1.2, ("Update the credit card on file", "Card declined on renewal",
                                 "Can we pay by bank transfer?")),
        ("plan_change", 1.0, ("Downgrade from Pro to Basic", "Question about upgrade pricing",
                              "Prorated charge after upgrading")),
        ("cancellation", 0.8, ("Cancel my subscription", "How do I stop auto-renewal?")),
    ),
    "technical": (
        ("login", 2.0, ("Can't log in after password reset", "2FA code not accepted",
                        "SSO login loop")),
        ("performance", 1.3, ("Dashboard very slow to load", "Reports time out",
                              "App freezes when exporting")),
        ("integration", 1.5, ("Slack integration stopped posting", "Webhook deliveries failing with 500",
                              "Zapier trigger not firing")),
        ("api", 1.0, ("API returns 429 rate limit errors", "API key not working",
                      "Unexpected 401 from the REST API")),
        ("sync", 1.2, ("Data not syncing between devices", "Calendar sync delayed",
                       "CSV import stuck at 0%")),
        ("mobile", 1.0, ("iOS app crashes on launch", "Android notifications not arriving")),
    ),
    "account": (
        ("password_reset", 2.0, ("Reset password link expired", "Didn't receive the password reset email")),
        ("profile", 1.2, ("Change the email on my account", "Update our company name",
                          "Rename our workspace")),
        ("access", 1.5, ("Add a new admin user", "Remove a former employee's access",
                         "Transfer account ownership")),
        ("security", 0.8, ("Suspicious login notification", "Enable SSO for our team")),
        ("data_request", 0.5, ("Delete my account and data", "GDPR data export request")),
    ),
    "shipping": (
        ("delayed", 2.5, ("Order {order} hasn't arrived", "Package delayed for a week",
                          "Tracking not updating for order {order}")),
        ("damaged", 1.0, ("Item arrived damaged", "Box crushed in transit, order {order}")),
        ("wrong_item", 1.0, ("Received the wrong item in order {order}", "Missing item from my order")),
        ("address_change", 1.0, ("Change the shipping address for order {order}",
                                 "Ship to a different address")),
        ("return", 1.3, ("How do I return order {order}?", "Return label not working")),
        ("customs", 0.5, ("Customs fees charged on delivery", "Do you ship to Canada?")),
    ),
    "feature_request": (
        ("reporting", 1.5, ("Export reports to PDF", "Custom date ranges in the dashboard",
                            "Scheduled email reports")),
        ("integrations", 1.3, ("Integration with Microsoft Teams", "Native HubSpot integration")),
        ("ux", 1.0, ("Dark mode please", "Keyboard shortcuts for the inbox", "Bulk edit in lists")),
        ("permissions", 0.8, ("Read-only role for contractors", "Per-team permissions")),
        ("api_request", 0.7, ("Bulk endpoint in the API", "Webhooks for ticket updates")),
    ),
    "bug": (
        ("ui", 1.5, ("Save button does nothing on the Settings page", "Layout broken in Safari",
                     "Dropdown cut off on small screens")),
        ("data", 1.3, ("Totals in the report don't match the export", "Duplicate records after import",
                       "Wrong timezone on timestamps")),
        ("crash", 1.2, ("Error 500 when saving a form", "App crashes when uploading an attachment")),
        ("notifications", 1.0, ("Email notifications sent twice", "No notification for mentions")),
        ("search", 0.8, ("Search returns nothing for an exact match", "Filters ignored in search")),
    ),
}  # fmt: skip
# Tags shared by every category, added to the issue's tag (0-2 of them); weights within a size.
_SECONDARY_TAGS: Final = (("follow_up", 0.30), ("escalated", 0.25), ("needs_info", 0.25),
                          ("duplicate", 0.10), ("feedback", 0.10))  # fmt: skip
_PRIMARY_TAG_P: Final = 0.85
_SECONDARY_COUNT_P: Final = (0.60, 0.30, 0.10)
_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip
_FILL_VARIANTS: Final = 6


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """What to generate.  ``end`` is required (no hidden "now"): tickets are created during the
    ``days`` days before it, and no timestamp falls after it."""

    end: datetime
    tickets: int = 20_000
    days: int = 180
    seed: int = 42
    agents: int = 25
    customers: int = 2_000
    timezone: str = "America/New_York"  # the support team's local time: shapes the arrival curve

    def __post_init__(self) -> None:
        if self.end.tzinfo is None or self.end.utcoffset() is None:
            raise ValueError("DemoConfig.end must be timezone-aware (UTC)")
        if self.tickets < 0:
            raise ValueError("DemoConfig.tickets must be >= 0")
        for name in ("days", "agents", "customers"):
            if getattr(self, name) < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if self.end - timedelta(days=self.days) < datetime(1970, 1, 2, tzinfo=UTC):
            raise ValueError("DemoConfig.end - days must be after 1970-01-02")


# ---------------------------------------------------------------------------------------------
# Simulation: integer codes and epoch seconds only.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    subjects: tuple[str, ...]
    subject_offset: I32  # by global issue
    subject_count: I32
    issue_offset: I32  # by category: first global issue
    issue_cdf: F64  # category x local issue
    tag_combos: tuple[tuple[str, ...], ...]  # global issue * combos_per_issue + combo
    combo_cdf: F64
    combos_per_issue: int


@dataclass(frozen=True)
class _Tickets:
    config: DemoConfig
    pools: _Pools
    created: I64  # epoch seconds, ascending
    first_response: I64  # valid where has_response
    resolved: I64  # valid where has_resolution
    has_response: Bool
    has_resolution: Bool
    customer: Codes
    agent: Codes
    category: Codes
    priority: Codes
    status: Codes
    channel: Codes
    subject: Codes
    tags: Codes
    satisfaction: npt.NDArray[np.int8]  # 0 = not rated

    @property
    def size(self) -> int:
        return int(self.created.shape[0])

    def updated(self) -> I64:
        latest = np.maximum(self.created, np.where(self.has_response, self.first_response, 0))
        return np.maximum(latest, np.where(self.has_resolution, self.resolved, 0))


def _cdf(weights: npt.ArrayLike) -> F64:
    """Row-wise cumulative distribution, last value exactly 1."""
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w, axis=-1)
    cdf /= cdf[..., -1:]
    cdf[..., -1] = 1.0
    return cdf


def _code_dtype(outcomes: int) -> type[np.signedinteger[Any]]:
    if outcomes <= np.iinfo(np.int8).max:
        return np.int8
    if outcomes <= np.iinfo(np.int16).max:
        return np.int16
    return np.int32


def _draw(rng: np.random.Generator, cdf: F64, group: Codes | None = None, size: int = 0) -> Codes:
    """One categorical draw per ticket, from row ``group[i]`` of ``cdf`` (groups x outcomes), or
    from the single distribution ``cdf`` when ``group`` is None (then ``size`` draws).

    Draws are lookups of uniform integers in a quantized inverse-CDF table (2**16 or 2**20 cells
    per row: probabilities are exact to 1e-5 / 1e-6), several times faster than a binary search;
    very large distributions fall back to ``searchsorted``.  Codes come back as the smallest
    signed integer type that holds them."""
    rows = np.atleast_2d(cdf)
    groups, outcomes = rows.shape
    n = size if group is None else int(group.shape[0])
    dtype = _code_dtype(outcomes)
    if outcomes > _TABLE_MAX_OUTCOMES:
        u = rng.random(n)
        if group is None:
            found = np.searchsorted(rows[0], u, side="right")
        else:  # row g shifted by g: g + u only lands inside row g
            stacked = (rows + np.arange(groups, dtype=np.float64)[:, None]).ravel()
            found = np.searchsorted(stacked, u + group, side="right") - group.astype(np.intp) * outcomes
        return np.clip(found, 0, outcomes - 1).astype(dtype)
    bits = 16 if outcomes <= 256 else 20
    bounds = np.rint(rows * (1 << bits)).astype(np.int64)  # last column: exactly 1 << bits
    cells = np.diff(bounds, axis=1, prepend=0).ravel()
    table = np.repeat(np.tile(np.arange(outcomes, dtype=dtype), groups), cells)
    r = rng.integers(0, 1 << bits, n, dtype=np.uint16 if bits == 16 else np.uint32)
    if group is None:
        codes: Codes = table.take(r)
        return codes
    index = np.left_shift(group, bits, dtype=np.int32)
    index |= r
    codes = table.take(index)
    return codes


def _build_pools(rng: np.random.Generator) -> _Pools:
    subjects: list[str] = []
    subject_offset: list[int] = []
    subject_count: list[int] = []
    issue_offset: list[int] = []
    issue_weights: list[list[float]] = []
    primary_tags: list[str] = []
    width = max(len(issues) for issues in _ISSUES.values())
    for category in CATEGORIES:
        issues = _ISSUES[category]
        issue_offset.append(len(primary_tags))
        issue_weights.append([weight for _, weight, _ in issues] + [0.0] * (width - len(issues)))
        for tag, _, templates in issues:
            primary_tags.append(tag)
            subject_offset.append(len(subjects))
            for template in templates:
                if "{" not in template:
                    subjects.append(template)
                    continue
                for _ in range(_FILL_VARIANTS):
                    subjects.append(
                        template.format(
                            order=f"#{int(rng.integers(100_000, 1_000_000))}",
                            invoice=f"INV-{int(rng.integers(10_000, 100_000))}",
                            month=_MONTHS[int(rng.integers(0, 12))],
                        )
                    )
            subject_count.append(len(subjects) - subject_offset[-1])

    secondary = [tag for tag, _ in _SECONDARY_TAGS]
    secondary_w = dict(_SECONDARY_TAGS)
    extras: list[tuple[str, ...]] = []
    extras_p: list[float] = []
    for size, size_p in enumerate(_SECONDARY_COUNT_P):
        subsets = list(itertools.combinations(secondary, size))
        weights = np.array([np.prod([secondary_w[t] for t in s]) for s in subsets], dtype=np.float64)
        extras.extend(subsets)
        extras_p.extend((size_p * weights / weights.sum()).tolist())
    combo_p = [_PRIMARY_TAG_P * p for p in extras_p] + [(1 - _PRIMARY_TAG_P) * p for p in extras_p]
    combos = tuple(
        (primary, *extra) if with_primary else extra
        for primary in primary_tags
        for with_primary in (True, False)
        for extra in extras
    )
    return _Pools(
        subjects=tuple(subjects),
        subject_offset=np.array(subject_offset, dtype=np.int32),
        subject_count=np.array(subject_count, dtype=np.int32),
        issue_offset=np.array(issue_offset, dtype=np.int32),
        issue_cdf=_cdf(issue_weights),
        tag_combos=combos,
        combo_cdf=_cdf(combo_p),
        combos_per_issue=2 * len(extras),
    )


def _calendar(start: int, buckets: int, timezone: str) -> tuple[Idx, Idx]:
    """Local hour and weekday at the middle of each UTC hour from ``start``."""
    zone = ZoneInfo(timezone)
    hour = np.empty(buckets, dtype=np.intp)
    weekday = np.empty(buckets, dtype=np.intp)
    first = datetime.fromtimestamp(start + _HOUR // 2, tz=UTC)
    for b in range(buckets):
        local = (first + timedelta(hours=b)).astimezone(zone)
        hour[b] = local.hour
        weekday[b] = local.weekday()
    return hour, weekday


def _simulate(config: DemoConfig) -> _Tickets:
    rng = np.random.default_rng(config.seed)
    pools = _build_pools(rng)
    n = config.tickets
    end = int(config.end.astimezone(UTC).timestamp() // 1)
    start = end - config.days * _DAY
    buckets = config.days * 24

    # --- arrivals: hourly rate x multinomial, then uniform within the hour ---
    hour, weekday = _calendar(start, buckets, config.timezone)
    bucket_ids = np.arange(buckets, dtype=np.int32)
    rate = _HOUR_WEIGHTS[hour] * _WEEKDAY_WEIGHTS[weekday]
    rate *= 1.0 + _GROWTH * (bucket_ids + 0.5) / buckets
    rate *= rng.lognormal(0.0, _DAY_NOISE_SIGMA, config.days)[bucket_ids // 24]
    incident = np.zeros(buckets, dtype=np.bool_)
    for _ in range(int(rng.poisson(config.days / _INCIDENT_EVERY_DAYS))):
        first = int(rng.integers(0, buckets))
        span = slice(first, first + int(rng.integers(_INCIDENT_HOURS[0], _INCIDENT_HOURS[1] + 1)))
        rate[span] *= rng.uniform(*_INCIDENT_SURGE)
        incident[span] = True
    staffed = (weekday < 5) & (hour >= _BUSINESS_HOURS[0]) & (hour < _BUSINESS_HOURS[1])
    # First staffed hour at or after each hour (``buckets`` + 1 day when none is left: after end).
    next_staffed = np.where(staffed, bucket_ids, buckets + 24)
    next_staffed = np.minimum.accumulate(next_staffed[::-1])[::-1]

    counts = rng.multinomial(n, rate / rate.sum())
    bucket = np.repeat(bucket_ids, counts)
    created = start + bucket.astype(np.int64) * _HOUR + rng.integers(0, _HOUR, n, dtype=np.int64)
    created.sort()  # buckets are already in order: this only orders tickets within their hour
    in_incident = incident[bucket]
    in_hours = staffed[bucket]

    # --- who and what ---
    customer_w = rng.lognormal(0.0, 1.2, config.customers)
    enterprise = rng.random(config.customers) < _ENTERPRISE_SHARE
    customer_w[enterprise] *= 2.0
    customer = _draw(rng, _cdf(customer_w), size=n)

    category = _draw(rng, _cdf(_CATEGORY_P), in_incident.astype(np.int8))
    priority = _draw(rng, _cdf(_PRIORITY_P), category)
    escalate = (enterprise[customer] & (rng.random(n) < _ENTERPRISE_ESCALATION)) | (
        in_incident & (rng.random(n) < _INCIDENT_ESCALATION)
    )
    priority = np.where(escalate, np.maximum(priority - 1, 0), priority)

    channel = _draw(rng, _cdf(_CHANNEL_P), category)
    offline_chat = rng.random(n) < 0.5
    off_hours = ~in_hours
    channel[off_hours & (channel == 2)] = 0  # phone -> voicemail / email
    channel[off_hours & (channel == 1) & offline_chat] = 3  # chat -> offline web form

    # Agents: workload, a specialty category (2x its share there), speed and satisfaction effect.
    workload = rng.gamma(6.0, 1.0, config.agents)
    specialty = rng.integers(0, len(CATEGORIES), config.agents)
    affinity = workload[None, :] * np.where(specialty[None, :] == np.arange(len(CATEGORIES))[:, None], 2, 1)
    speed = rng.lognormal(0.0, 0.4, config.agents)  # response-time factor: < 1 is fast
    thoroughness = speed**0.6 * rng.lognormal(0.0, 0.15, config.agents)  # resolution-time factor
    kindness = -0.3 * np.log(speed) + rng.normal(0.0, 0.2, config.agents)
    agent = _draw(rng, _cdf(affinity), category)

    issue = pools.issue_offset[category] + _draw(rng, pools.issue_cdf, category)
    subject = pools.subject_offset[issue] + (rng.random(n) * pools.subject_count[issue]).astype(np.int32)
    tags = issue * pools.combos_per_issue + _draw(rng, pools.combo_cdf, size=n)

    # --- first response ---
    response = np.exp(
        np.log(_FIRST_RESPONSE_MEDIAN_S)[priority] + _FIRST_RESPONSE_SIGMA * rng.standard_normal(n)
    )
    response *= _CHANNEL_RESPONSE_FACTOR[channel] * speed[agent]
    waits = off_hours & (rng.random(n) >= _ON_CALL_SHARE[priority])
    opening = start + next_staffed[bucket].astype(np.int64) * _HOUR
    backlog = rng.exponential(1.0, n) * _BACKLOG_MEAN_S[priority]
    response += np.where(waits, np.maximum(opening - created, 0) + backlog, 0.0)
    first_response = created + np.maximum(np.rint(response).astype(np.int64), _MIN_FIRST_RESPONSE_S)

    # --- resolution ---
    z = rng.standard_normal(n)
    work = np.exp(np.log(_RESOLUTION_MEDIAN_S)[priority] + _RESOLUTION_SIGMA * z)
    work *= _CATEGORY_RESOLUTION_FACTOR[category] * thoroughness[agent]
    first_contact = rng.random(n) < _FIRST_CONTACT_P[channel] * _FIRST_CONTACT_CATEGORY_FACTOR[category]
    work = np.where(first_contact, _FIRST_CONTACT_MEDIAN_S * np.exp(0.7 * z), work)
    resolved = first_response + np.maximum(np.rint(work).astype(np.int64), _MIN_RESOLUTION_S)
    parked = rng.random(n) < _NEVER_RESOLVED_P[category]

    dropped = rng.random(n) < _DROPPED_P
    dropped_closed = rng.random(n) < _DROPPED_CLOSED_P
    closing = rng.lognormal(np.log(_DROPPED_CLOSE_MEDIAN_S), 0.8, int(np.count_nonzero(dropped)))
    resolved[dropped] = created[dropped] + np.rint(closing).astype(np.int64)

    has_response = ~dropped & (first_response <= end)
    has_resolution = np.where(dropped, dropped_closed, ~parked) & (resolved <= end)

    # --- status ---
    status = np.zeros(n, dtype=np.int8)  # new
    open_status = 1 + _draw(rng, _cdf(_OPEN_STATUS_P), category)
    status = np.where(has_response, open_status, status)
    closed = dropped | ((end - resolved >= _AUTO_CLOSE_AFTER_S) & (rng.random(n) < _AUTO_CLOSE_P))
    status = np.where(has_resolution, np.where(closed, np.int8(5), np.int8(4)), status)

    # --- satisfaction ---
    rated = has_resolution & ~dropped & (rng.random(n) < _RATED_P)
    hours_to_resolve = (resolved - created) / _HOUR
    hours_to_respond = (first_response - created) / _HOUR
    score = (
        _SATISFACTION_BASE
        + _SATISFACTION_PER_DECADE_RESOLUTION * np.log10(1.0 + hours_to_resolve)
        + _SATISFACTION_PER_DECADE_RESPONSE * np.log10(1.0 + hours_to_respond)
        + kindness[agent]
        + _SATISFACTION_NOISE * rng.standard_normal(n)
    )
    satisfaction = np.where(rated, np.clip(np.rint(score), 1, 5), 0).astype(np.int8)

    return _Tickets(
        config=config,
        pools=pools,
        created=created,
        first_response=first_response,
        resolved=resolved,
        has_response=has_response,
        has_resolution=has_resolution,
        customer=customer,
        agent=agent,
        category=category,
        priority=priority,
        status=status,
        channel=channel,
        subject=subject,
        tags=tags,
        satisfaction=satisfaction,
    )


# ---------------------------------------------------------------------------------------------
# Materialization: strings and timestamps, for a whole run or one batch.
# ---------------------------------------------------------------------------------------------

_NAT: Final = np.iinfo(np.int64).min


def _ids(prefix: str, numbers: I64, width: int) -> npt.NDArray[np.str_]:
    """``prefix`` + zero-padded ``numbers`` as a fixed-width unicode array, built digit by digit."""
    chars = np.empty((numbers.shape[0], len(prefix) + width), dtype=np.uint32)
    for i, char in enumerate(prefix):
        chars[:, i] = ord(char)
    rest = numbers.astype(np.int64)
    for position in range(len(prefix) + width - 1, len(prefix) - 1, -1):
        chars[:, position] = ord("0") + rest % 10
        rest //= 10
    return chars.view(f"<U{len(prefix) + width}").ravel()


def _id_width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))


def _pool(values: Sequence[str]) -> npt.NDArray[np.object_]:
    pool = np.empty(len(values), dtype=object)
    pool[:] = list(values)
    return pool


def _datetimes(seconds: I64, valid: Bool | None = None) -> npt.NDArray[np.datetime64]:
    ms = seconds * 1000
    if valid is not None:
        ms = np.where(valid, ms, _NAT)
    return ms.view("datetime64[ms]")


def _timestamp_strings(seconds: I64, valid: Bool | None = None) -> list[str | None]:
    safe = seconds if valid is None else np.where(valid, seconds, 0)
    text = np.datetime_as_string(safe.astype("datetime64[s]"), unit="s")  # YYYY-MM-DDTHH:MM:SS
    chars = np.ascontiguousarray(text).view(np.uint32).reshape(text.shape[0], -1)
    chars[:, 10] = ord(" ")
    strings: list[str] = chars.view(text.dtype).ravel().tolist()
    if valid is None or bool(valid.all()):
        return list(strings)  # list[str] -> list[str | None]
    return [s if ok else None for s, ok in zip(strings, valid.tolist(), strict=True)]


class _Labels:
    """String pools of one simulation."""

    def __init__(self, tickets: _Tickets) -> None:
        config = tickets.config
        self.ticket_width = _id_width(config.tickets, 7)
        agent_width = _id_width(config.agents, 3)
        customer_width = _id_width(config.customers, 5)
        self.agents = _pool([f"A{i:0{agent_width}d}" for i in range(1, config.agents + 1)])
        self.customers = _pool([f"C{i:0{customer_width}d}" for i in range(1, config.customers + 1)])
        self.categories = _pool(CATEGORIES)
        self.priorities = _pool(PRIORITIES)
        self.statuses = _pool(STATUSES)
        self.channels = _pool(CHANNELS)
        self.subjects = _pool(tickets.pools.subjects)
        self.tag_lists = np.empty(len(tickets.pools.tag_combos), dtype=object)
        self.tag_lists[:] = [list(combo) for combo in tickets.pools.tag_combos]


def generate_columns(config: DemoConfig) -> dict[str, Column]:
    """All tickets as columns (keys in :data:`COLUMNS` order), ticket ids in creation order.

    * ``ticket_id``: fixed-width unicode array; the other string columns are object arrays of
      ``str`` (shared from small pools, so millions of rows stay cheap).
    * ``created_at``, ``first_response_at``, ``resolved_at``, ``updated_at``: ``datetime64[ms]``
      (UTC, whole seconds), ``NaT`` for null.
    * ``satisfaction_score``: float64, an integer 1-5 or ``nan`` for not rated.
    * ``tags``: list of lists of str.  Tickets with the same tags share one list: treat them as
      read-only (copy before changing one).
    """
    tickets = _simulate(config)
    labels = _Labels(tickets)
    n = tickets.size
    satisfaction = tickets.satisfaction.astype(np.float64)
    satisfaction[tickets.satisfaction == 0] = np.nan
    tags: list[list[str]] = labels.tag_lists[tickets.tags].tolist()
    return {
        "ticket_id": _ids("T", np.arange(1, n + 1, dtype=np.int64), labels.ticket_width),
        "customer_id": labels.customers[tickets.customer],
        "agent_id": labels.agents[tickets.agent],
        "category": labels.categories[tickets.category],
        "priority": labels.priorities[tickets.priority],
        "status": labels.statuses[tickets.status],
        "created_at": _datetimes(tickets.created),
        "first_response_at": _datetimes(tickets.first_response, tickets.has_response),
        "resolved_at": _datetimes(tickets.resolved, tickets.has_resolution),
        "satisfaction_score": satisfaction,
        "tags": tags,
        "updated_at": _datetimes(tickets.updated()),
        "channel": labels.channels[tickets.channel],
        "subject": labels.subjects[tickets.subject],
    }


def generate_events(config: DemoConfig, *, batch_size: int = 10_000) -> Iterator[list[dict[str, object]]]:
    """The tickets of :func:`generate_columns` as Events API JSON objects, ``batch_size`` per list
    (the last one may be shorter): timestamps as ``"YYYY-MM-DD HH:MM:SS"`` UTC strings, ``None``
    for null, ``satisfaction_score`` as an int, ``tags`` as a fresh list per ticket."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return _event_batches(config, batch_size)


def _event_batches(config: DemoConfig, batch_size: int) -> Iterator[list[dict[str, object]]]:
    tickets = _simulate(config)
    labels = _Labels(tickets)
    updated = tickets.updated()
    combos = tickets.pools.tag_combos
    for lo in range(0, tickets.size, batch_size):
        part = slice(lo, min(lo + batch_size, tickets.size))
        rated = tickets.satisfaction[part]
        columns: tuple[list[Any], ...] = (
            _ids("T", np.arange(lo + 1, part.stop + 1, dtype=np.int64), labels.ticket_width).tolist(),
            labels.customers[tickets.customer[part]].tolist(),
            labels.agents[tickets.agent[part]].tolist(),
            labels.categories[tickets.category[part]].tolist(),
            labels.priorities[tickets.priority[part]].tolist(),
            labels.statuses[tickets.status[part]].tolist(),
            _timestamp_strings(tickets.created[part]),
            _timestamp_strings(tickets.first_response[part], tickets.has_response[part]),
            _timestamp_strings(tickets.resolved[part], tickets.has_resolution[part]),
            [int(s) if s else None for s in rated.tolist()],
            [list(combos[i]) for i in tickets.tags[part].tolist()],
            _timestamp_strings(updated[part]),
            labels.channels[tickets.channel[part]].tolist(),
            labels.subjects[tickets.subject[part]].tolist(),
        )
        yield [dict(zip(COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]
