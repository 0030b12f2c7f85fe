"""Shared machinery for fixed-width vendor layouts: 1-based inclusive columns, as vendors print them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from pydantic import ValidationError


class Kind(StrEnum):
    """How a column is written."""

    TEXT = "text"  # left-aligned, space-padded ASCII
    NUMBER = "number"  # right-aligned digits, zero-padded; blank means "none"


@dataclass(frozen=True)
class Column:
    """One field of a layout: name and 1-based inclusive start and end columns."""

    name: str
    start: int
    end: int
    kind: Kind = Kind.TEXT

    @property
    def width(self) -> int:
        """Characters the field takes."""
        return self.end - self.start + 1


class LayoutError(ValueError):
    """A file failed to parse; `errors` names every bad line and column. Nothing was imported."""

    def __init__(self, source: str, errors: Sequence[str], *, outcome: str = "nothing imported") -> None:
        self.errors = list(errors)
        shown = "\n  ".join(self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"{source}: {len(self.errors)} bad record(s), {outcome}:\n  {shown}{more}")


class FieldError(ValueError):
    """One bad field, before line context is added."""

    def __init__(self, column: Column | None, message: str) -> None:
        self.column = column
        super().__init__(message)


def slice_fields(line: str, columns: Sequence[Column]) -> dict[str, str | int | None]:
    """Cut one record into fields; raise FieldError naming the column for bad content."""
    values: dict[str, str | int | None] = {}
    for col in columns:
        raw = line[col.start - 1 : col.end]
        if not raw.isascii() or not raw.isprintable():
            bad = next(i for i, ch in enumerate(raw) if not (ch.isascii() and ch.isprintable()))
            raise FieldError(
                col, f"column {col.start + bad} ({col.name}): character {raw[bad]!r} is not printable ASCII"
            )
        if col.kind is Kind.NUMBER:
            text = raw.strip()
            if not text:
                values[col.name] = None
            elif not text.isdigit():
                raise FieldError(col, f"columns {col.start}-{col.end} ({col.name}): {raw!r} is not a number")
            else:
                values[col.name] = int(text)
        else:
            values[col.name] = raw.strip()
    return values


def format_fields(values: dict[str, str | int | None], columns: Sequence[Column], length: int) -> str:
    """Write one record; raise FieldError when a value does not fit or is not ASCII."""
    out = [" "] * length
    for col in columns:
        value = values.get(col.name)
        if value is None:
            text = " " * col.width
        elif col.kind is Kind.NUMBER:
            if not isinstance(value, int) or value < 0:
                raise FieldError(col, f"{col.name}: {value!r} is not a non-negative whole number")
            text = str(value).rjust(col.width, "0")
        else:
            text = str(value).ljust(col.width)
        if len(text) > col.width:
            raise FieldError(col, f"{col.name}: {value!r} is wider than {col.width} characters")
        if not text.isascii():
            raise FieldError(col, f"{col.name}: {value!r} is not ASCII")
        out[col.start - 1 : col.end] = list(text)
    return "".join(out)


R = TypeVar("R")


def parse_file(
    text: str,
    *,
    source: str,
    length: int,
    columns: Sequence[Column],
    build: Callable[[int, dict[str, str | int | None]], R],
) -> list[R]:
    """Parse every line; collect every error and raise one LayoutError, so a bad file imports nothing."""
    records: list[R] = []
    errors: list[str] = []
    # Split on LF only (CRLF tolerated): str.splitlines would also split on \x1c, \x85 and friends.
    for number, line in enumerate((ln.removesuffix("\r") for ln in text.split("\n")), start=1):
        if not line.strip():
            continue
        if len(line) != length:
            errors.append(f"line {number}: record is {len(line)} characters; this layout is {length}")
            continue
        try:
            records.append(build(number, slice_fields(line, columns)))
        except FieldError as exc:
            errors.append(f"line {number}: {exc}")
        except ValidationError as exc:
            for e in exc.errors():
                field = str(e["loc"][0]) if e["loc"] else ""
                col = next((c for c in columns if c.name == field), None)
                where = f"columns {col.start}-{col.end} ({field})" if col else (field or "record")
                errors.append(f"line {number}: {where}: {e['msg']}")
    if errors:
        raise LayoutError(source, errors)
    return records


def format_file(
    rows: Sequence[dict[str, str | int | None]], *, source: str, length: int, columns: Sequence[Column]
) -> str:
    """Write records, one per CRLF-terminated line (vendor host software expects CRLF)."""
    lines: list[str] = []
    errors: list[str] = []
    for i, row in enumerate(rows, start=1):
        try:
            lines.append(format_fields(row, columns, length))
        except FieldError as exc:
            errors.append(f"record {i}: {exc}")
    if errors:
        raise LayoutError(source, errors, outcome="nothing written")
    return "".join(line + "\r\n" for line in lines)
