"""Pure: strict JSON out, whatever came in.

Python's json module reads `NaN`, `Infinity` and `1e999` (as an infinite
float) and writes them back as `NaN` and `Infinity`, which is not JSON: a
strict reader (BEMCom's API, Home Assistant, JavaScript's JSON.parse)
rejects the whole document, so one station's odd number would break
`available_datapoints` for every station. Everything the connector
publishes is encoded here: non-finite numbers become `null`.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any) -> str:
    """JSON text of `value`; non-finite floats anywhere inside become null."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        pass  # a non-finite number somewhere: the slow path, only then
    try:
        return json.dumps(_finite(value), allow_nan=False)
    except (ValueError, RecursionError):
        return "null"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def loads_strict(text: str | bytes) -> Any:
    """json.loads that refuses `NaN`, `Infinity` and `-Infinity` (ValueError)."""
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_finite_scalar(value: Any) -> bool:
    """A value that strict JSON writes as it is: no NaN or infinity, and no
    integer beyond 64 bits (no real reading has one; JSON readers round them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    return True
