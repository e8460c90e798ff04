"""The Knack emulator's write API: what ``POST``, ``PUT`` and ``DELETE`` on
``/v1/objects/{object}/records[/{id}]`` do to an app's records, as Knack's API documents it.

Create and update take a JSON object of ``field_N: value`` and answer the whole record as a
read does (``id``, ``field_N`` formatted, ``field_N_raw``); each value is checked and stored
by its field's type (:func:`store_value`), and a value Knack cannot take answers 400 with
``{"errors": [{"field": "field_N", "message": ...}]}``, nothing written. Delete answers
``{"delete": true}``. Ids are new ObjectId-like 24-hex ids (the emulator's ``new_record_id``).

Formats (Knack's): text types take a string; number, currency, rating a number (or a
numeric string); boolean true/false; date/time ``"MM/DD/YYYY h:mma"``, ``"MM/DD/YYYY"`` or
``{"date", "hours", "minutes", "am_pm"}`` (with ``to`` for a range), in the app's
timezone; multiple choice one of the field's options (a list where several are allowed);
name ``{"first", "middle", "last", "title"}``; address ``{"street", "street2", "city",
"state", "zip", "country", "latitude", "longitude"}``; email ``{"email"}`` or a string; phone
``{"full"}`` or a string; link ``{"url"}`` or a string; connection a list of record ids of
the connected object (or one id). ``""`` or null empties a field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
TEXT_TYPES = {"short_text", "paragraph_text", "rich_text"}
NUMBER_TYPES = {"number", "currency", "rating"}
ADDRESS_KEYS = ("street", "street2", "city", "state", "zip", "country", "latitude", "longitude")
NAME_KEYS = ("title", "first", "middle", "last")
_DATE_TEXT = re.compile(r"^\s*(\d{1,2}/\d{1,2}/\d{4})(?:\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm]))?\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Invalid(Exception):
    """A value its field cannot take: Knack's 400, naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Records = dict[str, dict[str, Any]]  # an object's records by id
# object key -> its records and its identifier field (for connections)
Lookup = Callable[[str], tuple[Records, str | None]]


def write(
    method: str, app: Any, object_key: str, record_id: str | None, body: bytes, new_id: Any
) -> tuple[int, Any]:
    """One write to ``app`` (the emulator's served app, its lock held): (status, payload)."""
    rows: Records = app.records[object_key]
    fields = app.fields[object_key]

    def records_of(key: str) -> tuple[Records, str | None]:
        return app.records.get(key, {}), app.identifiers.get(key)

    if method == "DELETE" or method == "PUT":
        if not record_id:
            return 405, _errors("", f"{method} needs a record id: .../records/<id>")
        if record_id not in rows:
            return 404, _errors("", f"Record {record_id} not found")
        if method == "DELETE":
            del rows[record_id]
            return 200, {"delete": True}
    elif record_id:
        return 405, _errors("", "POST creates a record: .../records, without an id")
    try:
        values = json.loads(body or b"null")
    except ValueError:
        return 400, _errors("", "The request body is not JSON")
    try:
        if method == "PUT":
            rows[record_id] = apply_values(rows[record_id], values, fields, records_of)
            return 200, rows[record_id]
        record = empty_values(fields, apply_values({}, values, fields, records_of))
    except Invalid as e:
        return 400, _errors(e.field, e.message)
    rid = new_id()
    for key, field in fields.items():
        if field.get("type") == "auto_increment":
            highest = max((r.get(f"{key}_raw") or 0 for r in rows.values()), default=0)
            number = max(app.next_number.get(object_key, 0), int(highest)) + 1
            app.next_number[object_key] = number
            record[key] = record[f"{key}_raw"] = number
    rows[rid] = {"id": rid, **record}
    return 200, rows[rid]


def _errors(field: str, message: str) -> dict[str, Any]:
    """Knack's error body."""
    return {"errors": [{"field": field, "message": message} if field else {"message": message}]}


def apply_values(
    record: dict[str, Any],
    body: Any,
    fields: dict[str, dict[str, Any]],
    records_of: Lookup,
) -> dict[str, Any]:
    """``record`` with ``body``'s values stored (a new dict); :class:`Invalid` for the first
    value its field cannot take (nothing changed then)."""
    if not isinstance(body, dict):
        raise Invalid("", "The request body must be a JSON object of field values")
    out = dict(record)
    for key, value in body.items():
        if key == "id":
            continue
        field = fields.get(key)
        if field is None:
            raise Invalid(key, f"Field {key} does not exist on this object")
        formatted, raw = store_value(field, value, records_of)
        out[key], out[f"{key}_raw"] = formatted, raw
    return out


def empty_values(fields: dict[str, dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every field it lacks present and empty (as a new Knack record)."""
    out = dict(record)
    for key, field in fields.items():
        if key not in out:
            empty: Any = [] if field.get("type") == "connection" else ""
            if field.get("type") == "boolean":
                empty = False
            out[key] = "No" if empty is False else ("" if empty == [] else empty)
            out[f"{key}_raw"] = empty
    return out


def store_value(field: dict[str, Any], value: Any, records_of: Lookup) -> tuple[Any, Any]:
    """``(field_N, field_N_raw)`` as Knack stores ``value`` in ``field``; Invalid else."""
    key, kind = field["key"], field.get("type")
    blank = value is None or value == "" or value == [] or value == {}
    if kind == "connection":
        return _connection(field, [] if blank else value, records_of)
    if blank:
        return ("No", False) if kind == "boolean" else ("", "")
    store = _STORES.get(str(kind))
    if store is None:
        raise Invalid(key, f"Field {key} ({kind}) cannot be written through the API")
    return store(field, value)


def _text(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(field["key"], f"{field['name']} must be text")
    return str(value), str(value)


def _number(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        raise Invalid(field["key"], f"{field['name']} must be a number") from None
    if field.get("type") == "rating":
        top = float((field.get("format") or {}).get("max") or 5)
        if not 0 <= number <= top:
            raise Invalid(field["key"], f"{field['name']} must be between 0 and {top:g}")
    shown = int(number) if number.is_integer() else number
    if field.get("type") == "currency":
        return f"${number:,.2f}", f"{number:.2f}"
    return shown, shown


def _boolean(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    if not isinstance(value, bool):
        raise Invalid(field["key"], f"{field['name']} must be true or false")
    return ("Yes" if value else "No"), value


def _wall(field: dict[str, Any], value: Any) -> dt.datetime:
    """A date/time write value as a naive local wall time."""
    key = field["key"]
    if isinstance(value, dict):
        try:
            day = dt.datetime.strptime(str(value["date"]), "%m/%d/%Y")
            hours, minutes = int(value.get("hours", 12)), int(value.get("minutes", 0))
            am_pm = str(value.get("am_pm", "AM")).upper()
        except (KeyError, ValueError, TypeError):
            raise Invalid(key, f"{field['name']} is not a valid date") from None
    elif isinstance(value, str) and (m := _DATE_TEXT.match(value)):
        try:
            day = dt.datetime.strptime(m.group(1), "%m/%d/%Y")
        except ValueError:
            raise Invalid(key, f"{field['name']} is not a valid date") from None
        hours, minutes = int(m.group(2) or 12), int(m.group(3) or 0)
        am_pm = (m.group(4) or "AM").upper()
    else:
        raise Invalid(key, f"{field['name']} is not a valid date: use MM/DD/YYYY h:mma")
    if not (1 <= hours <= 12 and 0 <= minutes <= 59 and am_pm in ("AM", "PM")):
        raise Invalid(key, f"{field['name']} has an invalid time")
    hour24 = hours % 12 + (12 if am_pm == "PM" else 0)
    return day.replace(hour=hour24, minute=minutes)


def _date_time(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    from emulators.knack import knack_date_time  # the module that imports this one

    fmt = field.get("format") or {}
    formatted, raw = knack_date_time(_wall(field, value), fmt)
    if isinstance(value, dict) and value.get("to"):
        to_text, to_raw = knack_date_time(_wall(field, value["to"]), fmt)
        raw = {**raw, "to": to_raw}
        formatted = f"{formatted} to {to_text}"
    return formatted, raw


def _multiple_choice(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    fmt = field.get("format") or {}
    options = fmt.get("options") or []
    many = fmt.get("type") in ("multi", "checkboxes")
    chosen = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in chosen):
        raise Invalid(field["key"], f"{field['name']} takes text options")
    if len(chosen) > 1 and not many:
        raise Invalid(field["key"], f"{field['name']} takes one option")
    for option in chosen:
        if option not in options:
            raise Invalid(field["key"], f"{option!r} is not an option of {field['name']}")
    return ", ".join(chosen), (chosen if many else chosen[0])


def _parts(field: dict[str, Any], value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - set(keys):
        raise Invalid(field["key"], f"{field['name']} takes an object of {', '.join(keys)}")
    return {k: value[k] for k in keys if value.get(k) not in (None, "")}


def _address(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    raw = _parts(field, value, ADDRESS_KEYS)
    for name, top in (("latitude", 90), ("longitude", 180)):
        if name in raw:
            try:
                number = float(raw[name])
            except (TypeError, ValueError):
                raise Invalid(field["key"], f"{field['name']}: {name} must be a number") from None
            if not -top <= number <= top:
                raise Invalid(field["key"], f"{field['name']}: {name} is out of range")
            raw[name] = number
    line2 = " ".join(str(raw[k]) for k in ("state", "zip") if k in raw)
    city = ", ".join(p for p in (str(raw.get("city", "")), line2) if p)
    text = "<br />".join(p for p in (raw.get("street"), raw.get("street2"), city) if p)
    return text, raw


def _name(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    raw = _parts(field, value, NAME_KEYS)
    return " ".join(str(raw[k]) for k in NAME_KEYS if k in raw), raw


def _email(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    raw = _parts(field, value, ("email", "label")) if isinstance(value, dict) else {"email": value}
    if not isinstance(raw.get("email"), str) or not _EMAIL.match(raw["email"]):
        raise Invalid(field["key"], "Please enter a valid email address")
    shown = raw.get("label") or raw["email"]
    return f'<a href="mailto:{raw["email"]}">{shown}</a>', raw


def _phone(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    full = _parts(field, value, ("full",)).get("full") if isinstance(value, dict) else value
    digits = re.sub(r"\D", "", str(full or ""))
    if not 7 <= len(digits) <= 15:
        raise Invalid(field["key"], "Please enter a valid phone number")
    formatted = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" if len(digits) == 10 else digits
    raw = {"full": digits, "formatted": formatted}
    if len(digits) == 10:
        raw |= {"area": digits[:3], "number": digits[3:]}
    return formatted, raw


def _link(field: dict[str, Any], value: Any) -> tuple[Any, Any]:
    raw = _parts(field, value, ("url", "label")) if isinstance(value, dict) else {"url": value}
    if not isinstance(raw.get("url"), str) or not raw["url"].strip():
        raise Invalid(field["key"], f"{field['name']} must be a URL")
    return f'<a href="{raw["url"]}">{raw.get("label") or raw["url"]}</a>', raw


def _connection(field: dict[str, Any], value: Any, records_of: Lookup) -> tuple[Any, Any]:
    ids = value if isinstance(value, list) else [value]
    target = (field.get("relationship") or {}).get("object")
    held, identifier_key = records_of(target) if target else ({}, None)
    raw = []
    for rid in ids:
        if not isinstance(rid, str) or rid not in held:
            raise Invalid(field["key"], f"{rid!r} is not a record of the connected object")
        identifier = held[rid].get(identifier_key, rid) if identifier_key else rid
        raw.append({"id": rid, "identifier": identifier})
    text = " ".join(f'<span class="{c["id"]}">{c["identifier"]}</span>' for c in raw)
    return text, raw


_STORES: dict[str, Callable[[dict[str, Any], Any], tuple[Any, Any]]] = {
    **dict.fromkeys(TEXT_TYPES, _text),
    **dict.fromkeys(NUMBER_TYPES, _number),
    "boolean": _boolean,
    "date_time": _date_time,
    "multiple_choice": _multiple_choice,
    "address": _address,
    "name": _name,
    "email": _email,
    "phone": _phone,
    "link": _link,
}
