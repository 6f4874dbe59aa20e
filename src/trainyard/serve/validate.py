"""Input validation built from the training schema.

One pydantic `TypeAdapter` per model version checks a request in Rust (pydantic-core) and also gives the
JSON Schema that the OpenAPI docs show. The policy, in full:

- a column the model never saw is refused (422, with the closest known name);
- columns the schema knows but does not use (the target, identifiers, ignored columns) are accepted and ignored;
- numeric columns need numbers (numeric strings are accepted; true/false are not) inside the range seen in training;
- categorical columns need one of the categories seen in training (when the schema recorded all of them);
- a *required* column is one that had no missing values in training: it must be present and not null;
- an *optional* column (it had missing values in training) may be absent or null: it is treated as missing
  and imputed exactly as in training.

`ValidationPolicy(ranges=False, categories=False, allow_missing=True)` relaxes each rule for a server
(`trainyard serve --no-range-check --allow-unseen-categories --allow-missing`).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from typing_extensions import NotRequired, Required, TypedDict

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from trainyard.data.schema import ColumnSchema, Schema

NUMBER_ROLES = ("numeric",)


@dataclass(frozen=True)
class ValidationPolicy:
    ranges: bool = True
    categories: bool = True
    allow_missing: bool = False
    max_batch: int = 10_000


@dataclass
class RowValidator:
    """Validates {"rows": [...]} bodies (JSON bytes or Python objects) for one model version."""

    schema: Schema
    policy: ValidationPolicy
    row_type: Any
    request_type: Any
    request: TypeAdapter
    rows: TypeAdapter
    required: list[str]
    optional: list[str]
    ignored: list[str]

    def validate_json(self, body: bytes) -> list[dict]:
        return self.request.validate_json(body)["rows"]

    def validate_rows(self, rows: list[dict]) -> list[dict]:
        return self.rows.validate_python(rows)

    def json_schema(self, prefix: str) -> dict:
        return self.request.json_schema(ref_template="#/components/schemas/{model}")


def is_required(col: ColumnSchema, policy: ValidationPolicy) -> bool:
    return not policy.allow_missing and col.missing_rate == 0


def _not_bool(value):
    # pydantic's lax mode reads true/false as 1.0/0.0; a JSON boolean in a numeric column is a client bug
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number, not a boolean")
    return value


def _column_type(col: ColumnSchema, policy: ValidationPolicy, required: bool):
    desc = f"{col.role} column"
    if col.role in NUMBER_ROLES:
        bounds = {}
        if policy.ranges and col.min is not None and col.max is not None and math.isfinite(col.min) and math.isfinite(col.max):
            bounds = {"ge": col.min, "le": col.max}
            desc += f"; seen in training: {col.min:g} to {col.max:g}"
        base = Annotated[float, Field(allow_inf_nan=False, **bounds), BeforeValidator(_not_bool)]
    elif col.role == "boolean":
        base = bool
    elif col.role == "categorical":
        complete = col.categories is not None and len(col.categories) >= col.n_unique
        if policy.categories and complete and col.categories:
            base = Literal[tuple(str(c) for c in col.categories)]
        else:
            base = str
    elif col.role == "datetime":
        base = datetime
    else:  # text
        base = str
    if col.missing_rate:
        desc += f"; {col.missing_rate:.1%} missing in training"
    if not required:
        base = base | None
        desc += "; optional: absent or null is treated as missing"
    else:
        desc += "; required"
    return Annotated[base, Field(description=desc)]


def build_validator(schema: Schema, policy: ValidationPolicy | None = None, title: str = "Row") -> RowValidator:
    policy = policy or ValidationPolicy()
    features = set(schema.features())
    fields: dict[str, Any] = {}
    required, optional, ignored = [], [], []
    for col in schema.columns:
        if col.name in features:
            req = is_required(col, policy)
            (required if req else optional).append(col.name)
            typ = _column_type(col, policy, req)
            fields[col.name] = Required[typ] if req else NotRequired[typ]
        else:  # target, id, ignore: accepted and ignored
            ignored.append(col.name)
            fields[col.name] = NotRequired[Annotated[Any, Field(description=f"{col.role} column: accepted and ignored")]]
    row_type = TypedDict(title, fields)  # type: ignore[misc]
    row_type.__pydantic_config__ = ConfigDict(extra="forbid", title=title)
    rows_type = Annotated[list[row_type], Field(min_length=1, max_length=policy.max_batch)]
    request_type = TypedDict(f"{title}Request", {"rows": Required[rows_type]})  # type: ignore[misc]
    request_type.__pydantic_config__ = ConfigDict(extra="forbid", title=f"{title}Request")
    return RowValidator(schema, policy, row_type, request_type, TypeAdapter(request_type), TypeAdapter(rows_type),
                        required, optional, ignored)


def describe_errors(exc: ValidationError, schema: Schema, *, rows_prefix: bool = True, limit: int = 20) -> list[dict]:
    """pydantic errors as {row, column, problem} items whose `problem` a person can act on."""
    known = [c.name for c in schema.columns]
    out = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = list(err.get("loc", ()))
        if rows_prefix and loc[:1] == ["rows"]:
            loc = loc[1:]
        row = loc[0] if loc and isinstance(loc[0], int) else None
        column = next((x for x in loc[1:] if isinstance(x, str)), None) if row is not None else None
        # Union members add their type name to the location (e.g. 'float', 'literal[...]'): drop those.
        if column is not None and column not in known:
            column = next((x for x in loc if isinstance(x, str) and x in known), column)
        out.append({"row": row, "column": column, "type": err["type"], "problem": _problem(err, row, column, schema, known)})
    return out


def _problem(err: dict, row, column, schema: Schema, known: list[str]) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "json_invalid":
        return f"the body is not valid JSON ({err['msg'].split(',', 1)[-1].strip()})"
    if row is None:
        return _body_problem(err)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(column), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"row {row}: unknown column '{column}'{hint}; the model was trained on {', '.join(schema.features())}"
    if kind == "missing":
        return f"row {row}: missing required column '{column}' (it was never missing in training)"
    where = f"row {row}, column '{column}'" if column is not None else f"row {row}"
    if value is None:
        return f"{where}: missing value, but this column was never missing in training (required)"
    return _value_problem(err, where, _column(schema, column))


def _body_problem(err: dict) -> str:
    """A problem with the request as a whole (not one row)."""
    kind = err["type"]
    if kind == "missing":
        return "the body needs a 'rows' list: {\"rows\": [{...}, ...]}"
    if kind == "extra_forbidden":
        return f"unknown field '{err['loc'][-1]}' in the body: send {{\"rows\": [...]}}"
    if kind == "too_long":
        return f"too many rows: at most {err['ctx']['max_length']} per request (split the batch or use `trainyard predict` on a file)"
    if kind == "too_short":
        return "'rows' is empty: send at least one row"
    return f"{err['msg']}"


def _value_problem(err: dict, where: str, col: ColumnSchema | None) -> str:
    """A value of one row that the training schema refuses."""
    kind, value = err["type"], err.get("input")
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{where}: {value!r} is outside the range seen in training [{col.min:g}, {col.max:g}]"
    if kind == "literal_error":
        seen = ", ".join(repr(c) for c in (col.categories or [])[:20])
        more = " ..." if col and col.categories and len(col.categories) > 20 else ""
        return f"{where}: unknown category {value!r}; seen in training: {seen}{more}"
    expected = {"float_type": "a finite number", "float_parsing": "a finite number", "finite_number": "a finite number",
                "bool_type": "true/false", "bool_parsing": "true/false", "string_type": "text"}
    if kind in expected:
        return f"{where}: expected {expected[kind]}, got {value!r}"
    if kind.startswith("datetime"):
        return f"{where}: expected a date/time (ISO 8601), got {value!r}"
    if kind in ("dict_type", "model_type", "typed_dict_type"):
        return f"{where}: each row must be a JSON object mapping column names to values"
    if kind == "list_type":
        return "'rows' must be a list of objects"
    return f"{where}: {err['msg']}"


def _column(schema: Schema, name) -> ColumnSchema | None:
    try:
        return schema.column(name)
    except KeyError:
        return None
