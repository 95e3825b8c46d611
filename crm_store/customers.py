"""Customers: profile, tier, consent per message category, quiet hours, birthdays."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lunardate import LunarDate
from sqlalchemy import and_, extract, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm_store._unique import try_change, try_insert
from crm_store.audit import diff, record_audit
from crm_store.clock import BUSINESS_TZ, Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import CATEGORIES, CHANNELS, TIERS, Consent, ConsentChange
from crm_store.models import Customer as CustomerRow
from crm_store.validation import check_choice, check_email, check_text, normalize_phone

# Service messages are on until refused; marketing offers need an explicit opt-in (PIPL).
CONSENT_DEFAULTS: Mapping[str, bool] = {
    "care": True,
    "follow_up": True,
    "survey": True,
    "offer": False,
}
# The tier a member reaches by their last twelve months' spend, in cents.
TIER_SPEND_THRESHOLDS: Mapping[str, int] = {
    "普通": 0,
    "银卡": 200_000,
    "金卡": 800_000,
    "钻石": 2_000_000,
}
DEFAULT_QUIET_HOURS = (time(22, 0), time(8, 0))


@dataclass(frozen=True)
class LunarBirthday:
    month: int
    day: int
    leap: bool = False


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    phone: str | None
    email: str | None
    birthday: date | None
    lunar_birthday: LunarBirthday | None
    celebrates_lunar_birthday: bool
    tier: str
    points_balance: int
    preferred_channel: str
    timezone: str
    quiet_start: time | None
    quiet_end: time | None
    created_at: datetime
    last_active_at: datetime | None
    erased_at: datetime | None = None  # `carebot forget` left only this anonymous row


def to_record(row: CustomerRow) -> Customer:
    lunar = None
    if row.lunar_birth_month is not None and row.lunar_birth_day is not None:
        lunar = LunarBirthday(
            row.lunar_birth_month, row.lunar_birth_day, bool(row.lunar_birth_leap)
        )
    return Customer(
        id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        birthday=row.birthday,
        lunar_birthday=lunar,
        celebrates_lunar_birthday=bool(row.celebrates_lunar_birthday),
        tier=row.tier,
        points_balance=row.points_balance,
        preferred_channel=row.preferred_channel,
        timezone=row.timezone,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        created_at=row.created_at,
        last_active_at=row.last_active_at,
        erased_at=row.erased_at,
    )


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"unknown time zone {name!r}") from error
    return name


def check_lunar(lunar: LunarBirthday) -> LunarBirthday:
    if not (1 <= lunar.month <= 12 and 1 <= lunar.day <= 30):
        raise InvalidInput(f"not a lunar month/day: {lunar.month}/{lunar.day}")
    return lunar


def create_customer(
    session: Session,
    *,
    name: str,
    phone: str | None = None,
    email: str | None = None,
    birthday: date | None = None,
    lunar_birthday: LunarBirthday | None = None,
    tier: str = "普通",
    preferred_channel: str = "web",
    timezone: str = BUSINESS_TZ.key,
    quiet_hours: tuple[time, time] | None = DEFAULT_QUIET_HOURS,
    consents: Mapping[str, bool] | None = None,
    clock: Clock = utcnow,
) -> Customer:
    """A new customer with one consent row per category (defaults, overridden by `consents`)."""
    now = clock()
    row = CustomerRow(
        name=check_text(name, "name", 64),
        phone=normalize_phone(phone) if phone else None,
        email=check_email(email) if email else None,
        birthday=birthday,
        **_lunar_columns(lunar_birthday),
        tier=check_choice(tier, TIERS, "tier"),
        points_balance=0,
        preferred_channel=check_choice(preferred_channel, CHANNELS, "channel"),
        timezone=check_timezone(timezone),
        quiet_start=quiet_hours[0] if quiet_hours else None,
        quiet_end=quiet_hours[1] if quiet_hours else None,
        created_at=now,
    )
    wanted = {**CONSENT_DEFAULTS, **_checked_consents(consents or {})}
    if not try_insert(session, row):
        raise Conflict(f"a customer with phone {row.phone} already exists")
    session.add_all(
        Consent(customer_id=row.id, category=key, granted=value, source="signup", updated_at=now)
        for key, value in wanted.items()
    )
    session.add_all(
        ConsentChange(
            customer_id=row.id,
            category=key,
            granted=value,
            source="signup",
            channel=preferred_channel,
            changed_at=now,
        )
        for key, value in wanted.items()
    )
    session.flush()
    return to_record(row)


def _lunar_columns(lunar: LunarBirthday | None) -> dict[str, object]:
    checked = check_lunar(lunar) if lunar else None
    return {
        "lunar_birth_month": checked.month if checked else None,
        "lunar_birth_day": checked.day if checked else None,
        "lunar_birth_leap": checked.leap if checked else False,
        "celebrates_lunar_birthday": checked is not None,
    }


def _checked_consents(consents: Mapping[str, bool]) -> dict[str, bool]:
    return {
        check_choice(key, CATEGORIES, "category"): bool(value) for key, value in consents.items()
    }


def _row(session: Session, customer_id: int) -> CustomerRow:
    row = session.get(CustomerRow, customer_id)
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row


def get_customer(session: Session, *, customer_id: int) -> Customer:
    return to_record(_row(session, customer_id))


def find_customer(
    session: Session, *, phone: str | None = None, email: str | None = None
) -> Customer | None:
    """By phone (any common spelling) or email; None when nobody matches."""
    if phone:
        query = select(CustomerRow).where(CustomerRow.phone == normalize_phone(phone))
    elif email:
        query = select(CustomerRow).where(CustomerRow.email == check_email(email))
    else:
        raise InvalidInput("find_customer needs a phone or an email")
    row = session.scalars(query.limit(1)).first()
    return to_record(row) if row else None


def search_customers(session: Session, *, text: str, limit: int = 20) -> list[Customer]:
    """Console search: a name fragment or a phone prefix."""
    pattern = check_text(text, "search text", 64)
    query = (
        select(CustomerRow)
        .where(or_(CustomerRow.name.contains(pattern), CustomerRow.phone.startswith(pattern)))
        .order_by(CustomerRow.id)
        .limit(limit)
    )
    return [to_record(row) for row in session.scalars(query)]


def list_customers(
    session: Session, *, tier: str | None = None, limit: int = 50, offset: int = 0
) -> list[Customer]:
    query = select(CustomerRow).order_by(CustomerRow.id).limit(limit).offset(offset)
    if tier is not None:
        query = query.where(CustomerRow.tier == check_choice(tier, TIERS, "tier"))
    return [to_record(row) for row in session.scalars(query)]


def update_customer(
    session: Session,
    *,
    customer_id: int,
    actor: str,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    tier: str | None = None,
    preferred_channel: str | None = None,
    timezone: str | None = None,
    clock: Clock = utcnow,
) -> Customer:
    """Change the given fields (None leaves a field alone) and audit the difference."""
    row = _row(session, customer_id)
    wanted = _clean_changes(name, phone, email, tier, preferred_channel, timezone)
    before = {key: getattr(row, key) for key in wanted}
    if not try_change(session, lambda: _assign(row, wanted)):
        raise Conflict(f"phone {phone} belongs to another customer")
    changes = diff(before, wanted)
    if changes:
        record_audit(
            session,
            actor=actor,
            action="update_customer",
            entity="customer",
            entity_id=customer_id,
            changes=changes,
            clock=clock,
        )
    return to_record(row)


def _assign(row: CustomerRow, values: Mapping[str, object]) -> None:
    for key, value in values.items():
        setattr(row, key, value)


def _clean_changes(
    name: str | None,
    phone: str | None,
    email: str | None,
    tier: str | None,
    channel: str | None,
    timezone: str | None,
) -> dict[str, str]:
    checks = {
        "name": (name, lambda v: check_text(v, "name", 64)),
        "phone": (phone, normalize_phone),
        "email": (email, check_email),
        "tier": (tier, lambda v: check_choice(v, TIERS, "tier")),
        "preferred_channel": (channel, lambda v: check_choice(v, CHANNELS, "channel")),
        "timezone": (timezone, check_timezone),
    }
    return {key: check(value) for key, (value, check) in checks.items() if value is not None}


def set_quiet_hours(
    session: Session, *, customer_id: int, quiet_hours: tuple[time, time] | None
) -> Customer:
    row = _row(session, customer_id)
    row.quiet_start, row.quiet_end = quiet_hours if quiet_hours else (None, None)
    session.flush()
    return to_record(row)


def set_birthday(
    session: Session,
    *,
    customer_id: int,
    birthday: date | None,
    lunar_birthday: LunarBirthday | None = None,
) -> Customer:
    row = _row(session, customer_id)
    _assign(row, {"birthday": birthday, **_lunar_columns(lunar_birthday)})
    session.flush()
    return to_record(row)


def touch_customer(session: Session, *, customer_id: int, clock: Clock = utcnow) -> None:
    """Mark the customer active now (called for each customer turn)."""
    session.execute(
        update(CustomerRow).where(CustomerRow.id == customer_id).values(last_active_at=clock())
    )


def set_consent(
    session: Session,
    *,
    customer_id: int,
    category: str,
    granted: bool,
    source: str,
    actor: str | None = None,
    channel: str | None = None,
    clock: Clock = utcnow,
) -> dict[str, bool]:
    """Grant or withdraw one category; returns all consents afterwards. Every call is kept in
    the consent history (`consent_changes`, with the channel it came on): a consent given,
    withdrawn and given again is three records, which is what a regulator or the dashboard's
    opt-out count needs to see."""
    check_choice(category, CATEGORIES, "category")
    _row(session, customer_id)
    consent = session.get(Consent, (customer_id, category))
    if consent is None:
        consent = Consent(customer_id=customer_id, category=category)
        session.add(consent)
    before = consent.granted
    now = clock()
    consent.granted, consent.source, consent.updated_at = granted, source, now
    session.add(
        ConsentChange(
            customer_id=customer_id,
            category=category,
            granted=granted,
            source=check_text(source, "source", 32),
            channel=check_text(channel, "channel", 16) if channel else None,
            changed_at=now,
        )
    )
    session.flush()
    if before != granted:
        record_audit(
            session,
            actor=actor or source,
            action="set_consent",
            entity="customer",
            entity_id=customer_id,
            changes={category: [before, granted]},
            clock=clock,
        )
    return get_consents(session, customer_id=customer_id)


def get_consents(session: Session, *, customer_id: int) -> dict[str, bool]:
    rows = session.scalars(select(Consent).where(Consent.customer_id == customer_id))
    stored = {row.category: row.granted for row in rows}
    return {category: stored.get(category, CONSENT_DEFAULTS[category]) for category in CATEGORIES}


def in_quiet_hours(local: time, start: time | None, end: time | None) -> bool:
    """True inside [start, end); a window with start > end wraps past midnight."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def may_contact(
    customer: Customer, consents: Mapping[str, bool], category: str, now: datetime
) -> bool:
    """Whether a proactive message of `category` may go out at `now` (consent and quiet hours)."""
    check_choice(category, CATEGORIES, "category")
    if not consents.get(category, CONSENT_DEFAULTS[category]):
        return False
    local = now.astimezone(ZoneInfo(customer.timezone)).time()
    return not in_quiet_hours(local, customer.quiet_start, customer.quiet_end)


def next_birthday(customer: Customer, today: date) -> date | None:
    """The next Gregorian date (today included) the customer celebrates a birthday."""
    if customer.celebrates_lunar_birthday and customer.lunar_birthday:
        return _next_lunar(customer.lunar_birthday, today)
    if customer.birthday is None:
        return None
    this_year = _gregorian_in(customer.birthday, today.year)
    return this_year if this_year >= today else _gregorian_in(customer.birthday, today.year + 1)


def _gregorian_in(birthday: date, year: int) -> date:
    try:
        return birthday.replace(year=year)
    except ValueError:  # 29 February outside a leap year is celebrated on the 28th
        return date(year, 2, 28)


def _next_lunar(lunar: LunarBirthday, today: date) -> date:
    for year in (today.year - 1, today.year, today.year + 1):
        candidate = lunar_to_solar(lunar, year)
        if candidate >= today:
            return candidate
    raise InvalidInput(f"no Gregorian date for lunar birthday {lunar}")  # pragma: no cover


def lunar_to_solar(lunar: LunarBirthday, lunar_year: int) -> date:
    """A leap-month birthday falls back to the plain month in years without that leap month;
    day 30 falls back to day 29 in a short month."""
    for leap in dict.fromkeys((lunar.leap, False)):
        for day in (lunar.day, lunar.day - 1):
            try:
                return LunarDate(lunar_year, lunar.month, day, leap).toSolarDate()
            except ValueError:
                continue
    raise InvalidInput(f"no lunar date {lunar} in {lunar_year}")


def list_birthdays(session: Session, *, on: date) -> list[Customer]:
    """Customers whose birthday (Gregorian, or lunar for those who celebrate it) falls on `on`."""
    query = (
        select(CustomerRow).where(or_(_gregorian_on(on), _lunar_on(on))).order_by(CustomerRow.id)
    )
    return [to_record(row) for row in session.scalars(query)]


def _gregorian_on(on: date) -> ColumnElement:
    month, day = extract("month", CustomerRow.birthday), extract("day", CustomerRow.birthday)
    days = [on.day]
    if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year):
        days.append(29)
    return and_(CustomerRow.celebrates_lunar_birthday.is_(False), month == on.month, day.in_(days))


def _lunar_on(on: date) -> ColumnElement:
    lunar = LunarDate.fromSolarDate(on.year, on.month, on.day)
    days = [lunar.day]
    if lunar.day == 29 and not _lunar_exists(lunar.year, lunar.month, 30, lunar.isLeapMonth):
        days.append(30)
    leap_matches = CustomerRow.lunar_birth_leap.is_(lunar.isLeapMonth)
    if not lunar.isLeapMonth and not _lunar_exists(lunar.year, lunar.month, 1, True):
        leap_matches = true()  # no leap month this year: leap-born customers celebrate now
    return and_(
        CustomerRow.celebrates_lunar_birthday.is_(True),
        CustomerRow.lunar_birth_month == lunar.month,
        CustomerRow.lunar_birth_day.in_(days),
        leap_matches,
    )


def _lunar_exists(year: int, month: int, day: int, leap: bool) -> bool:
    try:
        LunarDate(year, month, day, leap)
    except ValueError:
        return False
    return True
