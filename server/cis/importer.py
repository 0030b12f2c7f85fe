"""CIS import: validate every row of every file, then apply all of it in one transaction, or none of it.

Upserts are keyed by the CIS's natural keys, so importing the same extract twice changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.accounts.models import (
    Account,
    Balance,
    Customer,
    MoveRequest,
    Payment,
    PaymentArrangement,
    ServicePoint,
    ShutoffHold,
    ShutoffNotice,
)
from server.adjustments.models import Bill, BillLine
from server.audit.service import record
from server.cis.formats import FieldError, FileSpec, specs
from server.db import copy_rows, utcnow
from server.meters.intake import mark_duplicates
from server.meters.models import Meter, MeterRead

BATCH_ROWS = 5_000  # rows per executemany
MAINTAIN_AFTER_ROWS = 10_000  # PostgreSQL: ANALYZE in, VACUUM after, an import this large
COPY_THRESHOLD = 2_000  # PostgreSQL batches at least this big go through COPY
READ_CHUNK = 100_000  # reads are converted and written this many at a time, to bound memory


@dataclass(frozen=True)
class ImportIssue:
    """One thing wrong with the input: file, line (1 = header) and field."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ImportRejected(Exception):
    """The extract was refused; nothing of it was applied."""

    def __init__(self, issues: Sequence[ImportIssue]) -> None:
        self.issues = list(issues)
        shown = "; ".join(str(i) for i in self.issues[:5])
        more = f"; and {len(self.issues) - 5} more" if len(self.issues) > 5 else ""
        super().__init__(
            f"import rejected, nothing was applied: {len(self.issues)} problem(s): {shown}{more}"
        )


@dataclass
class ParsedFile:
    """The typed rows of one file, each with its line number."""

    spec: FileSpec
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    # First-key values of rows that were present but refused: references to them are not reported
    # again as "missing", since the refused row is already in the report.
    refused_keys: set[str] = field(default_factory=set)


@dataclass
class ImportResult:
    """What an import applied, per file, and how many rereads validating the new reads raised."""

    rows: dict[str, int]
    rereads: int = 0
    duplicates: int = 0  # reads already held from another source (kept as duplicates, not billed twice)


ProgressFn = Callable[[str, int], None]


def parse_file(spec: FileSpec, data: bytes, issues: list[ImportIssue]) -> ParsedFile:
    """Parse one CSV file's bytes into typed rows, appending every problem to `issues`."""
    parsed = ParsedFile(spec)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        issues.append(ImportIssue(spec.filename, line, "", f"not UTF-8 text (byte {exc.start})"))
        return parsed
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        issues.append(ImportIssue(spec.filename, 1, "", "the file is empty; it needs a header line"))
        return parsed
    except csv.Error as exc:
        issues.append(ImportIssue(spec.filename, 1, "", f"bad CSV: {exc}"))
        return parsed
    header = [h.strip() for h in header]
    known = set(spec.column_names)
    for name in header:
        if name not in known:
            issues.append(
                ImportIssue(spec.filename, 1, name, f"unknown column; known: {', '.join(spec.column_names)}")
            )
    if len(set(header)) != len(header):
        issues.append(ImportIssue(spec.filename, 1, "", "a column name appears twice"))
    for col in spec.columns:
        if col.required and col.name not in header:
            issues.append(ImportIssue(spec.filename, 1, col.name, "required column is missing"))
    if any(i.file == spec.filename for i in issues):
        return parsed
    index = {name: i for i, name in enumerate(header)}
    seen_keys: dict[tuple[Any, ...], int] = {}
    while True:
        try:
            raw_row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.append(ImportIssue(spec.filename, reader.line_num, "", f"bad CSV: {exc}"))
            break
        line = reader.line_num
        if not raw_row or all(not cell.strip() for cell in raw_row):
            continue  # blank line
        if len(raw_row) != len(header):
            issues.append(
                ImportIssue(
                    spec.filename, line, "", f"has {len(raw_row)} fields, the header has {len(header)}"
                )
            )
            continue
        row: dict[str, Any] = {}
        ok = True
        for col in spec.columns:
            raw = raw_row[index[col.name]].strip() if col.name in index else ""
            if raw == "":
                if col.required:
                    issues.append(ImportIssue(spec.filename, line, col.name, "is required"))
                    ok = False
                row[col.name] = col.default
                continue
            try:
                row[col.name] = col.parse(raw)
            except FieldError as exc:
                issues.append(ImportIssue(spec.filename, line, col.name, str(exc)))
                ok = False
        if not ok:
            first_key = spec.key[0]
            if first_key in index:
                parsed.refused_keys.add(raw_row[index[first_key]].strip())
            continue
        key = tuple(row[k] for k in spec.key)
        if key in seen_keys:
            issues.append(
                ImportIssue(spec.filename, line, ",".join(spec.key), f"duplicate of line {seen_keys[key]}")
            )
            continue
        seen_keys[key] = line
        parsed.rows.append(row)
        parsed.lines.append(line)
    return parsed


def _existing(session: Session, column: Any) -> set[Any]:
    return set(session.scalars(select(column)))


def check_references(session: Session, files: dict[str, ParsedFile], issues: list[ImportIssue]) -> None:
    """Every reference must resolve to a row in this extract or already in the database."""
    db_keys: dict[str, set[Any]] = {}
    lookups = {
        "service_points.csv": ServicePoint.cis_service_point_id,
        "accounts.csv": Account.account_number,
        "meters.csv": Meter.serial,
        "bills.csv": Bill.cis_bill_id,
    }
    for parsed in files.values():
        for column, target in parsed.spec.refs:
            in_batch: set[Any] = set()
            if target in files:
                in_batch = {r[files[target].spec.key[0]] for r in files[target].rows} | files[
                    target
                ].refused_keys
            if target not in db_keys:
                db_keys[target] = _existing(session, lookups[target])
            known = in_batch | db_keys[target]
            for row, line in zip(parsed.rows, parsed.lines, strict=True):
                value = row[column]
                if value not in (None, "") and value not in known:
                    issues.append(
                        ImportIssue(
                            parsed.spec.filename,
                            line,
                            column,
                            f"{value!r} is not in {target} or the database",
                        )
                    )


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]], key: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE for `rows` (PostgreSQL and SQLite share the syntax)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) >= COPY_THRESHOLD:
        _upsert_pg_copy(session, table, rows, key)
        return
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    update_cols = [c for c in rows[0] if c not in key]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={c: stmt.excluded[c] for c in update_cols}
    )
    for start in range(0, len(rows), BATCH_ROWS):
        session.execute(stmt, rows[start : start + BATCH_ROWS])


def _upsert_pg_copy(session: Session, table: Table, rows: list[dict[str, Any]], key: Sequence[str]) -> None:
    """The set-based PostgreSQL path: COPY into a staging table, then one INSERT ... SELECT ... ON CONFLICT.

    Several times faster than pipelined executemany for large extracts (see docs/benchmarks.md).
    """
    stage = f"_stage_{table.name}"
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        # WITH NO DATA copies the column types and nothing else (no defaults, keys or indexes).
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DROP AS SELECT * FROM "{table.name}" WITH NO DATA'
        )
        cur.execute(f'TRUNCATE "{stage}"')
        columns = copy_rows(session, table, rows, into=stage)
        quoted = ", ".join(f'"{c}"' for c in columns)
        given = list(rows[0])
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in given if c not in key)
        conflict = ", ".join(f'"{k}"' for k in key)
        cur.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{stage}" '
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )


def _id_map(session: Session, key_col: Any, id_col: Any, keys: Iterable[Any]) -> dict[Any, int]:
    wanted = set(keys)
    if not wanted:
        return {}
    return {k: i for k, i in session.execute(select(key_col, id_col)) if k in wanted}


def apply(session: Session, files: dict[str, ParsedFile], progress: ProgressFn | None = None) -> ImportResult:
    """Write every parsed file in dependency order (the caller commits or rolls back)."""
    counts: dict[str, int] = {}
    note = progress or (lambda _name, _n: None)

    def rows_of(name: str) -> list[dict[str, Any]]:
        return files[name].rows if name in files else []

    sps = rows_of("service_points.csv")
    _upsert(
        session,
        ServicePoint.__table__,  # type: ignore[arg-type]
        [
            {"cis_service_point_id": r["service_point_id"], **{k: r[k] for k in r if k != "service_point_id"}}
            for r in sps
        ],
        ["cis_service_point_id"],
    )
    note("service_points.csv", len(sps))

    accounts = rows_of("accounts.csv")
    customers: dict[str, dict[str, Any]] = {}
    for r in accounts:
        customers[r["customer_id"]] = {
            "cis_customer_id": r["customer_id"],
            "name": r["customer_name"],
            "phone": r["phone"],
            "email": r["email"],
            "mailing_address": r["mailing_address"],
            "low_income": r["low_income"],
        }
    _upsert(session, Customer.__table__, list(customers.values()), ["cis_customer_id"])  # type: ignore[arg-type]
    sp_ids = _id_map(
        session,
        ServicePoint.cis_service_point_id,
        ServicePoint.id,
        [r["service_point_id"] for r in accounts]
        + [r["service_point_id"] for r in rows_of("meters.csv")]
        + [r["service_point_id"] for r in rows_of("move_requests.csv")],
    )
    cust_ids = _id_map(session, Customer.cis_customer_id, Customer.id, customers)
    _upsert(
        session,
        Account.__table__,  # type: ignore[arg-type]
        [
            {
                "account_number": r["account_number"],
                "customer_id": cust_ids[r["customer_id"]],
                "service_point_id": sp_ids[r["service_point_id"]],
                "status": r["status"],
                "occupied": r["occupied"],
                "service_class": r["service_class"],
                "billing_cycle": r["billing_cycle"],
                "opened_date": r["opened_date"],
                "closed_date": r["closed_date"],
            }
            for r in accounts
        ],
        ["account_number"],
    )
    note("accounts.csv", len(accounts))

    meters = rows_of("meters.csv")
    _upsert(
        session,
        Meter.__table__,  # type: ignore[arg-type]
        [
            {**r, "service_point_id": sp_ids.get(r["service_point_id"]) if r["service_point_id"] else None}
            for r in meters
        ],
        ["serial"],
    )
    note("meters.csv", len(meters))

    reads = rows_of("reads.csv")
    duplicates = 0
    if reads:
        meter_ids = _id_map(session, Meter.serial, Meter.id, (r["meter_serial"] for r in reads))
        batch: list[dict[str, Any]] = []
        for r in reads:
            batch.append(
                {
                    "meter_id": meter_ids[r["meter_serial"]],
                    "register": r["register"],
                    "read_at": r["read_at"],
                    "reading": r["reading"],
                    "source": r["source"],
                    "read_code": r["read_code"],
                    "estimated": r["estimated"],
                    "received_at": utcnow(),
                    # A read sent again with a new value is derived again, and so are the reads after it.
                    "derived": False,
                }
            )
            if len(batch) >= READ_CHUNK:
                _upsert(session, MeterRead.__table__, batch, ["meter_id", "register", "read_at", "source"])  # type: ignore[arg-type]
                note("reads.csv", len(batch))
                batch = []
        _upsert(session, MeterRead.__table__, batch, ["meter_id", "register", "read_at", "source"])  # type: ignore[arg-type]
        note("reads.csv", len(batch))
        # The intake's duplicate rule, set-based: a read we already hold from another source (a hand-held
        # read the CIS sends back, say) is kept as its duplicate, never billed twice.
        duplicates = mark_duplicates(session)

    account_keys = [
        r["account_number"]
        for name in (
            "balances.csv",
            "payments.csv",
            "arrangements.csv",
            "holds.csv",
            "notices.csv",
            "move_requests.csv",
        )
        for r in rows_of(name)
        if r.get("account_number")
    ]
    acct_ids = _id_map(session, Account.account_number, Account.id, account_keys)

    def with_account(rows: list[dict[str, Any]], rename: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            item = {rename.get(k, k): v for k, v in r.items() if k != "account_number"}
            item["account_id"] = acct_ids.get(r["account_number"]) if r.get("account_number") else None
            out.append(item)
        return out

    balances = with_account(
        rows_of("balances.csv"), {"balance": "balance_cents", "past_due": "past_due_cents"}
    )
    for b in balances:
        if b["as_of"] is None:
            b["as_of"] = utcnow()
    _upsert(session, Balance.__table__, balances, ["account_id"])  # type: ignore[arg-type]
    _upsert(
        session,
        Payment.__table__,  # type: ignore[arg-type]
        with_account(rows_of("payments.csv"), {"payment_id": "cis_payment_id", "amount": "amount_cents"}),
        ["cis_payment_id"],
    )
    _upsert(
        session,
        PaymentArrangement.__table__,  # type: ignore[arg-type]
        with_account(
            rows_of("arrangements.csv"),
            {
                "arrangement_id": "cis_arrangement_id",
                "total": "total_cents",
                "down_payment": "down_payment_cents",
            },
        ),
        ["cis_arrangement_id"],
    )
    _upsert(
        session,
        ShutoffHold.__table__,
        with_account(rows_of("holds.csv"), {"hold_id": "cis_hold_id"}),
        ["cis_hold_id"],  # type: ignore[arg-type]
    )
    _upsert(
        session,
        ShutoffNotice.__table__,  # type: ignore[arg-type]
        with_account(rows_of("notices.csv"), {"notice_id": "cis_notice_id"}),
        ["cis_notice_id"],
    )
    moves = with_account(rows_of("move_requests.csv"), {"request_id": "cis_request_id"})
    for m in moves:
        m["service_point_id"] = sp_ids[m["service_point_id"]]
    _upsert(session, MoveRequest.__table__, moves, ["cis_request_id"])  # type: ignore[arg-type]
    for name in (
        "balances.csv",
        "payments.csv",
        "arrangements.csv",
        "holds.csv",
        "notices.csv",
        "move_requests.csv",
    ):
        note(name, len(rows_of(name)))
    _apply_bills(session, rows_of("bills.csv"), rows_of("bill_lines.csv"), note)
    for name, parsed in files.items():
        counts[name] = len(parsed.rows)
    return ImportResult(rows=counts, duplicates=duplicates)


def check_bills(files: dict[str, ParsedFile], issues: list[ImportIssue]) -> None:
    """A bill's own rules: its period runs forward, its readings come in pairs, its total is its lines'."""
    bills = files.get("bills.csv")
    if bills is None:
        return
    totals: dict[str, int] = {}
    if "bill_lines.csv" in files:
        for row in files["bill_lines.csv"].rows:
            totals[row["bill_id"]] = totals.get(row["bill_id"], 0) + row["amount"]
    for row, line in zip(bills.rows, bills.lines, strict=True):

        def bad(column: str, message: str, line: int = line) -> None:
            issues.append(ImportIssue("bills.csv", line, column, message))

        if row["period_end"] <= row["period_start"]:
            bad("period_end", f"{row['period_end']} is not after period_start {row['period_start']}")
        if (row["start_reading"] is None) != (row["end_reading"] is None):
            bad(
                "end_reading" if row["end_reading"] is None else "start_reading",
                "give both readings or neither",
            )
        if row["start_read_at"] and row["end_read_at"] and row["end_read_at"] <= row["start_read_at"]:
            bad("end_read_at", "is not after start_read_at")
        if (row["start_reading"] is not None or row["start_read_at"]) and not row["meter_serial"]:
            bad("meter_serial", "is required when the bill names its reads")
        if row["total"] is not None and row["bill_id"] in totals and totals[row["bill_id"]] != row["total"]:
            lines_total = totals[row["bill_id"]]
            bad(
                "total",
                f"{row['total'] / 100:.2f} is not the sum of its lines in bill_lines.csv ({lines_total / 100:.2f})",
            )


def _apply_bills(
    session: Session,
    bills: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    note: Callable[[str, int], None],
) -> None:
    """Upsert bills by CIS bill id and their lines by (bill, component); a bill's total is its lines' sum."""
    if bills:
        acct_ids = _id_map(session, Account.account_number, Account.id, (r["account_number"] for r in bills))
        meter_ids = _id_map(
            session, Meter.serial, Meter.id, (r["meter_serial"] for r in bills if r["meter_serial"])
        )
        _upsert(
            session,
            Bill.__table__,  # type: ignore[arg-type]
            [
                {
                    "cis_bill_id": r["bill_id"],
                    "account_id": acct_ids[r["account_number"]],
                    "meter_id": meter_ids.get(r["meter_serial"]) if r["meter_serial"] else None,
                    "period_start_date": r["period_start"],
                    "period_end_date": r["period_end"],
                    "start_read_at": r["start_read_at"],
                    "start_reading": r["start_reading"],
                    "end_read_at": r["end_read_at"],
                    "end_reading": r["end_reading"],
                    "consumption": r["consumption"],
                    "unit": r["unit"],
                    "estimated": r["estimated"],
                    "total_cents": r["total"] or 0,
                    "imported_at": utcnow(),
                }
                for r in bills
            ],
            ["cis_bill_id"],
        )
        note("bills.csv", len(bills))
    if lines:
        bill_ids = _id_map(session, Bill.cis_bill_id, Bill.id, (r["bill_id"] for r in lines))
        _upsert(
            session,
            BillLine.__table__,  # type: ignore[arg-type]
            [
                {
                    "bill_id": bill_ids[r["bill_id"]],
                    "component": r["component"],
                    "quantity": r["quantity"],
                    "amount_cents": r["amount"],
                    "description": r["description"],
                }
                for r in lines
            ],
            ["bill_id", "component"],
        )
        # A bill whose row gave its total was checked against these lines (check_bills); the others
        # (no total given, or lines sent without their bill) take the sum of their stored lines.
        given = {r["bill_id"] for r in bills if r["total"] is not None}
        summed = sorted({bill_ids[r["bill_id"]] for r in lines if r["bill_id"] not in given})
        for start in range(0, len(summed), BATCH_ROWS):
            chunk = summed[start : start + BATCH_ROWS]
            session.execute(
                update(Bill)
                .where(Bill.id.in_(chunk))
                .values(
                    total_cents=select(func.sum(BillLine.amount_cents))
                    .where(BillLine.bill_id == Bill.id)
                    .scalar_subquery()
                )
            )
        note("bill_lines.csv", len(lines))


def load_files(paths: Sequence[Path], zone: ZoneInfo) -> tuple[dict[str, ParsedFile], list[ImportIssue]]:
    """Parse the given CSV files (named as in the layouts), collecting every issue."""
    layouts = specs(zone)
    issues: list[ImportIssue] = []
    files: dict[str, ParsedFile] = {}
    for path in paths:
        spec = layouts.get(path.name)
        if spec is None:
            issues.append(
                ImportIssue(path.name, 0, "", f"unknown file; expected one of: {', '.join(layouts)}")
            )
            continue
        files[path.name] = parse_file(spec, path.read_bytes(), issues)
    # Apply in dependency order regardless of the order given.
    ordered = {name: files[name] for name in layouts if name in files}
    return ordered, issues


def find_files(directory: Path, zone: ZoneInfo) -> list[Path]:
    """The known CSV files present in `directory`."""
    return [directory / name for name in specs(zone) if (directory / name).exists()]


def validate_imported_reads(session: Session, *, zone: ZoneInfo, actor: str) -> int:
    """Validate the newest read of every meter that has not been validated yet, raising rereads.

    Older reads in an extract are the history the limits come from; the newest is what billing is
    about to use. Runs the order-generation reread rule (a recorded run), in the import's transaction.
    """
    import datetime as dt

    from server.orders import generation
    from server.orders.policy import current_policy
    from server.orders.rules.base import Rule

    run = generation.run(
        session,
        policy=current_policy(),
        run_date=dt.datetime.now(zone).date(),
        zone=zone,
        rules=[Rule.REREAD],
        actor=f"{actor}:cis-import",
    )
    return run.counts.get(Rule.REREAD.value, {}).get("create", 0)


def import_files(
    session: Session,
    paths: Sequence[Path],
    *,
    zone: ZoneInfo,
    actor: str = "cli",
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Validate and apply an extract atomically; raise ImportRejected listing every problem."""
    if not paths:
        raise ImportRejected([ImportIssue("(extract)", 0, "", "no CIS files given")])
    files, issues = load_files(paths, zone)
    # References are checked on the rows that parsed, so one report lists every problem at once.
    check_references(session, files, issues)
    check_bills(files, issues)
    if issues:
        raise ImportRejected(issues)
    try:
        result = apply(session, files, progress)
        record(
            db_session=session,
            actor=actor,
            action="import",
            entity_type="cis_extract",
            entity_id=utcnow().strftime("%Y%m%dT%H%M%S.%fZ"),
            detail={"files": sorted(files), "rows": result.rows},
        )
        if (
            session.get_bind().dialect.name == "postgresql"
            and sum(result.rows.values()) >= MAINTAIN_AFTER_ROWS
        ):
            # Statistics for the rows just loaded (ANALYZE sees this transaction's rows): without them the
            # validation below and the next order-generation runs are planned for empty tables, minutes
            # instead of seconds (measured: 20x slower order generation after a bulk load).
            session.execute(text("ANALYZE"))
        if "reads.csv" in files:
            result.rereads = validate_imported_reads(session, zone=zone, actor=actor)
        session.commit()
    except Exception:
        session.rollback()
        raise
    if session.get_bind().dialect.name == "postgresql" and sum(result.rows.values()) >= MAINTAIN_AFTER_ROWS:
        _vacuum_loaded(session)
    return result


def _vacuum_loaded(session: Session) -> None:
    """VACUUM (ANALYZE) the tables a large import wrote, after its commit (VACUUM cannot run in a
    transaction). It sets the new rows' hint bits and visibility map once, here, instead of the next
    order-generation run paying for it on its first scan of two million reads (measured: 14.8 s for the
    first run after a bulk load against 10.7 s for the second). Skipped when the session is bound to a
    connection (an outer transaction: tests)."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        return
    tables = [
        model.__table__.name  # type: ignore[attr-defined]
        for model in (
            ServicePoint,
            Customer,
            Account,
            Meter,
            MeterRead,
            Balance,
            Payment,
            PaymentArrangement,
            ShutoffHold,
            ShutoffNotice,
            MoveRequest,
            Bill,
            BillLine,
        )
    ]
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            conn.execute(text(f'VACUUM (ANALYZE) "{name}"'))
