"""The adjustment policy (authority limits and calculator defaults) from TOML, validated.

The built-in `policy.toml` beside this module is the documentation and the defaults; a utility's file
(setting `adjustments_policy_file`, env `CURBSTOP_ADJUSTMENTS_POLICY_FILE`) overrides any of its keys.
A bad file is refused with the line and key (`PolicyError`, shared with the order-generation policy).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from server.orders.policy import (
    PolicyError,
    _bool,
    _choice,
    _float,
    _int,
    _str_set,
    _suggest,
    cache_key,
    key_line,
)

DEFAULT_ADJUSTMENT_POLICY_PATH = Path(__file__).with_name("policy.toml")
KINDS = ("reread_correction", "meter_test", "leak_credit", "fee_reversal", "estimate_true_up")
APPROVER_ROLES = ("advisor", "supervisor", "admin")
FLOW_POINTS = ("low", "intermediate", "high")
FEES = ("late_fee", "delinquency", "reconnection")


@dataclass(frozen=True)
class AuthorityPolicy:
    limits: dict[str, dict[str, int]]  # role -> kind (or "default") -> cents
    two_approver_kinds: frozenset[str]

    def limit_for(self, role: str, kind: str) -> int | None:
        """Cents `role` may approve of `kind`; None when the role approves nothing."""
        table = self.limits.get(role)
        if table is None:
            return None
        return table.get(kind, table["default"])


@dataclass(frozen=True)
class MeterTestPolicy:
    flow_point_weights: dict[str, float]
    refund_above_pct: float
    backbill_below_pct: float
    refund_max_months: int
    backbill_max_months: int
    backbill_share: float
    min_amount_cents: int


@dataclass(frozen=True)
class LeakCreditPolicy:
    require_repair_proof: bool
    once_per_months: int
    max_bills: int
    share: float
    price: str  # lowest_tier | average
    normal_years: int
    min_amount_cents: int


@dataclass(frozen=True)
class MinimumPolicy:
    min_amount_cents: int


@dataclass(frozen=True)
class FeesPolicy:
    reversible: frozenset[str]


@dataclass(frozen=True)
class AdjustmentPolicy:
    """A validated adjustment policy; `source` names the file."""

    authority: AuthorityPolicy
    meter_test: MeterTestPolicy
    leak: LeakCreditPolicy
    reread: MinimumPolicy
    true_up: MinimumPolicy
    fees: FeesPolicy
    source: str = "built-in"


def _authority_table(v: Any) -> dict[str, int]:
    if not isinstance(v, dict) or "default_cents" not in v:
        raise ValueError("expected { default_cents = <cents>, <kind>_cents = <cents> ... }")
    out: dict[str, int] = {}
    for key, cents in v.items():
        kind = key.removesuffix("_cents")
        if not key.endswith("_cents") or (kind != "default" and kind not in KINDS):
            raise ValueError(
                f"unknown key {key!r}; use default_cents or one of: {', '.join(k + '_cents' for k in KINDS)}"
            )
        out[kind] = _int(0)(cents)
    return out


def _weights(v: Any) -> dict[str, float]:
    if not isinstance(v, dict) or not v:
        raise ValueError("expected a table of flow point = weight")
    out = {}
    for point, weight in v.items():
        if point not in FLOW_POINTS:
            raise ValueError(f"unknown flow point {point!r}; known: {', '.join(FLOW_POINTS)}")
        out[point] = _float(0.0, 1.0)(weight)
    if abs(sum(out.values()) - 1.0) > 1e-9:
        raise ValueError(f"the weights must add up to 1, they add up to {sum(out.values()):g}")
    return out


SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "authority": {
        **{role: _authority_table for role in APPROVER_ROLES},
        "two_approver_kinds": _str_set(frozenset(KINDS)),
    },
    "meter_test": {
        "flow_point_weights": _weights,
        "refund_above_pct": _float(100.0, 200.0),
        "backbill_below_pct": _float(0.0, 100.0),
        "refund_max_months": _int(0, 120),
        "backbill_max_months": _int(0, 120),
        "backbill_share": _float(0.0, 1.0),
        "min_amount_cents": _int(0),
    },
    "leak": {
        "require_repair_proof": _bool,
        "once_per_months": _int(0, 240),
        "max_bills": _int(1, 24),
        "share": _float(0.0, 1.0),
        "price": _choice("lowest_tier", "average"),
        "normal_years": _int(1, 10),
        "min_amount_cents": _int(0),
    },
    "reread": {"min_amount_cents": _int(0)},
    "true_up": {"min_amount_cents": _int(0)},
    "fees": {"reversible": _str_set(frozenset(FEES))},
}


def _convert(data: dict[str, Any], text: str, path: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if section not in SCHEMA:
            raise PolicyError(
                path, key_line(text, section), section, "unknown section" + _suggest(section, list(SCHEMA))
            )
        if not isinstance(table, dict):
            raise PolicyError(path, key_line(text, section), section, "must be a table ([section])")
        converted = {}
        for key, value in table.items():
            if key not in SCHEMA[section]:
                raise PolicyError(
                    path,
                    key_line(text, section, key),
                    f"{section}.{key}",
                    "unknown key" + _suggest(key, list(SCHEMA[section])),
                )
            try:
                converted[key] = SCHEMA[section][key](value)
            except ValueError as exc:
                raise PolicyError(path, key_line(text, section, key), f"{section}.{key}", str(exc)) from None
        out[section] = converted
    return out


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(path, None, "", f"not valid TOML: {exc}") from None


def load_adjustment_policy(path: Path | str | None = None) -> AdjustmentPolicy:
    """The built-in defaults overlaid with the file at `path` (if any), validated."""
    default_text = DEFAULT_ADJUSTMENT_POLICY_PATH.read_text()
    values = _convert(
        _parse(default_text, "built-in adjustment policy"), default_text, "built-in adjustment policy"
    )
    source = "built-in"
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise PolicyError(
                str(p), None, "", f"cannot read the adjustment policy file: {exc.strerror}"
            ) from None
        for section, table in _convert(_parse(text, str(p)), text, str(p)).items():
            values.setdefault(section, {}).update(table)
        source = str(p)
    where = source if path is not None else "built-in adjustment policy"
    mt = MeterTestPolicy(**values["meter_test"])
    if mt.backbill_below_pct > mt.refund_above_pct:
        raise PolicyError(where, None, "meter_test.backbill_below_pct", "must not be above refund_above_pct")
    auth = values["authority"]
    return AdjustmentPolicy(
        authority=AuthorityPolicy(
            limits={role: auth[role] for role in APPROVER_ROLES if role in auth},
            two_approver_kinds=auth["two_approver_kinds"],
        ),
        meter_test=mt,
        leak=LeakCreditPolicy(**values["leak"]),
        reread=MinimumPolicy(**values["reread"]),
        true_up=MinimumPolicy(**values["true_up"]),
        fees=FeesPolicy(**values["fees"]),
        source=source,
    )


@lru_cache(maxsize=8)
def _cached(path: str | None, mtime: float) -> AdjustmentPolicy:
    return load_adjustment_policy(path)


def current_adjustment_policy(path: Path | None = None) -> AdjustmentPolicy:
    """The configured adjustment policy, reloaded when its file changes."""
    if path is None:
        from server.config import get_settings

        path = get_settings().adjustments_policy_file
    return _cached(*cache_key(path))
