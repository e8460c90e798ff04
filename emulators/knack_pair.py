"""A generated pair of Knack apps for copying records from one to the other: a source
"assets" app (owners, and assets with one field of every type the Knack destination
writes, connected to their owner) and a destination app holding the same two objects
under other object and field keys, in another timezone, each with a text field for the
source record id. Source records are made through the emulator's own write rules
(``emulators.knack_writes``), so their raw values are what Knack stores.

Installed dates fall within two hours of local midnight in both timezones (the hours
where a date moved between zones changes its calendar day).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from emulators.knack import _hex_id
from emulators.knack_writes import apply_values, empty_values

SOURCE_TZ = "Central Time (US & Canada)"
TARGET_TZ = "Eastern Time (US & Canada)"
OWNERS, ASSETS = "object_1", "object_2"  # the source's objects
TARGET_OWNERS, TARGET_ASSETS = "object_11", "object_12"  # the destination's
OWNER_MATCH, ASSET_MATCH = "field_102", "field_230"  # destination fields of the source id
STATUSES = ["ACTIVE", "RETIRED", "IN REPAIR"]
TAGS = ["north", "south", "school zone", "flashing"]
# source key, type, label, extra definition; the destination key is field_2xx (xx = N - 10)
ASSET_FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("field_11", "short_text", "Asset Name", {}),
    ("field_12", "paragraph_text", "Notes", {}),
    ("field_13", "number", "Count", {"format": {"precision": "0"}}),
    ("field_14", "boolean", "Active", {"format": {"format": "yes_no"}}),
    ("field_15", "date_time", "Installed", {"format": {"time_format": "HH:MM am"}}),
    ("field_16", "multiple_choice", "Status", {"format": {"type": "single", "options": STATUSES}}),
    ("field_17", "address", "Location", {"format": {"input": "lat_long", "format": "US"}}),
    ("field_18", "name", "Contact", {"format": {"format": "First Last"}}),
    ("field_19", "email", "Email", {}),
    ("field_20", "phone", "Phone", {"format": {"format": "(999) 999-9999"}}),
    ("field_21", "link", "Link", {}),
    ("field_22", "connection", "Owner", {"relationship": {"has": "one", "belongs_to": "many"}}),
    ("field_23", "rating", "Condition", {"format": {"max": "5"}}),
    ("field_24", "currency", "Cost", {"format": {"format": "$"}}),
    ("field_25", "date_time", "Modified", {"format": {"time_format": "HH:MM am"}}),
    ("field_26", "multiple_choice", "Tags", {"format": {"type": "multi", "options": TAGS}}),
    ("field_27", "date_time", "Inspected On", {"format": {"time_format": "Ignore Time"}}),
    ("field_28", "rich_text", "Remarks", {}),
]
MODIFIED = "field_25"


def target_key(source_key: str) -> str:
    """The destination field a source field of the assets maps to (field_11 → field_201)."""
    return f"field_{int(source_key.split('_')[1]) + 190}"


FIELD_MAP = {key: target_key(key) for key, *_ in ASSET_FIELDS if key != MODIFIED}


def _field(key: str, kind: str, name: str, obj: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "type": kind, "name": name, "object_key": obj, "required": False, **extra}


def _app(app_id: str, name: str, tz: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": app_id,
        "name": name,
        "slug": name.lower().replace(" ", "-"),
        "settings": {"timezone": tz},
        "objects": objects,
        "scenes": [],
        "counts": {},
        "account": {"id": _hex_id(app_id, "account"), "slug": "emulator", "name": "emulator"},
        "home_scene": {"key": "scene_1", "slug": "home"},
        "status": "active",
    }


def _object(key: str, name: str, identifier: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "name": name, "identifier": identifier, "fields": fields}


def source_metadata(seed: int = 0, tz: str = SOURCE_TZ) -> dict[str, Any]:
    owners = _object(
        OWNERS, "owners", "field_1", [_field("field_1", "short_text", "Owner Name", OWNERS, {})]
    )
    fields = []
    for key, kind, name, extra in ASSET_FIELDS:
        if kind == "connection":
            extra = {"relationship": {**extra["relationship"], "object": OWNERS}}
        fields.append(_field(key, kind, name, ASSETS, extra))
    assets = _object(ASSETS, "assets", "field_11", fields)
    return _app(_hex_id("assets-source", seed), "Assets", tz, [owners, assets])


def target_metadata(seed: int = 0, tz: str = TARGET_TZ) -> dict[str, Any]:
    owners = _object(
        TARGET_OWNERS,
        "owners copy",
        "field_101",
        [
            _field("field_101", "short_text", "Owner Name", TARGET_OWNERS, {}),
            _field(OWNER_MATCH, "short_text", "Source Id", TARGET_OWNERS, {}),
        ],
    )
    fields = [_field(ASSET_MATCH, "short_text", "Source Id", TARGET_ASSETS, {})]
    for key, kind, name, extra in ASSET_FIELDS:
        if kind == "connection":
            extra = {"relationship": {**extra["relationship"], "object": TARGET_OWNERS}}
        fields.append(_field(target_key(key), kind, name, TARGET_ASSETS, extra))
    assets = _object(TARGET_ASSETS, "assets copy", target_key("field_11"), fields)
    return _app(_hex_id("assets-target", seed), "Assets Copy", tz, [owners, assets])


def asset_values(rng: random.Random, i: int, owners: list[str], base: dt.date) -> dict[str, Any]:
    """One asset's write values: every field filled (a few left empty), Installed within
    two hours of midnight (source time)."""
    day = base + dt.timedelta(days=rng.randrange(120))
    minutes = rng.randrange(-120, 120)
    installed = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    modified = dt.datetime.combine(base, dt.time(9)) + dt.timedelta(minutes=i)
    return {
        "field_11": f"Asset {i:05d}",
        "field_12": rng.choice(["", "Checked.", "Replaced lamp.\nNeeds paint."]),
        "field_13": rng.randint(0, 40),
        "field_14": rng.random() < 0.5,
        "field_15": _when(installed),
        "field_16": rng.choice(STATUSES),
        "field_17": {
            "street": f"{rng.randint(100, 9999)} Congress Ave",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "latitude": round(30.2 + rng.random() / 10, 6),
            "longitude": round(-97.8 + rng.random() / 10, 6),
        },
        "field_18": {"first": rng.choice(["Ana", "Bo", "Cy"]), "last": f"Smith{i % 7}"},
        "field_19": {"email": f"asset{i}@example.com"},
        "field_20": f"512{rng.randint(2000000, 9999999)}",
        "field_21": {"url": f"https://example.com/assets/{i}"},
        "field_22": [owners[i % len(owners)]],
        "field_23": rng.randint(0, 5),
        "field_24": round(rng.uniform(0, 5000), 2),
        "field_25": _when(modified),
        "field_26": rng.sample(TAGS, rng.randint(0, 2)),
        "field_27": day.strftime("%m/%d/%Y"),
        "field_28": f"<p>asset <b>{i}</b></p>",
    }


def _when(wall: dt.datetime) -> dict[str, Any]:
    return {
        "date": wall.strftime("%m/%d/%Y"),
        "hours": wall.hour % 12 or 12,
        "minutes": wall.minute,
        "am_pm": "AM" if wall.hour < 12 else "PM",
    }


def generate_pair(
    n: int, *, seed: int = 0, owners: int = 5
) -> tuple[tuple[dict[str, Any], dict[str, list[dict]]], dict[str, Any]]:
    """((source metadata, its records), destination metadata): ``n`` assets, ``owners``
    owners; the destination app is empty."""
    rng = random.Random(seed)
    source = source_metadata(seed)
    fields = {o["key"]: {f["key"]: f for f in o["fields"]} for o in source["objects"]}
    owner_rows: dict[str, dict[str, Any]] = {}
    for i in range(owners):
        rid = _hex_id("owner", seed, i)
        values = apply_values({}, {"field_1": f"Owner {i}"}, fields[OWNERS], lambda k: ({}, None))
        owner_rows[rid] = {"id": rid, **empty_values(fields[OWNERS], values)}

    def records_of(key: str) -> tuple[dict[str, dict[str, Any]], str | None]:
        return (owner_rows, "field_1") if key == OWNERS else ({}, None)

    ids = list(owner_rows)
    base = dt.date(2026, 3, 1)
    assets = []
    for i in range(n):
        rid = f"{0x69600000 + i:08x}{rng.getrandbits(40):010x}{i:06x}"
        values = apply_values({}, asset_values(rng, i, ids, base), fields[ASSETS], records_of)
        assets.append({"id": rid, **empty_values(fields[ASSETS], values)})
    records = {OWNERS: list(owner_rows.values()), ASSETS: assets}
    return (source, records), target_metadata(seed)


# --- the demo's destination: a copy of the fixture app's object_3, in another timezone ---

DEMO_COPY_APP_ID = "5d79512148c4af00106d15c0"  # params/demo-copy.yaml
DEMO_COPY_MATCH = "field_900"
# the fields of object_3 the demo copies (params/demo.yaml: knack.fields maps each to itself)
DEMO_COPY_FIELDS = (
    "field_6",  # multiple choice
    "field_7",  # short text
    "field_10",  # number
    "field_13",  # date/time
    "field_19",  # name
    "field_20",  # email
    "field_22",  # phone
    "field_24",  # link
    "field_25",  # rating
    "field_29",  # boolean
    "field_30",  # currency
    "field_44",  # address with latitude/longitude
)


def demo_copy_metadata(fixture: dict[str, Any]) -> dict[str, Any]:
    """The demo's destination app: the fixture app's object_3 (``fixture``: its metadata)
    with only the copied fields and a text field for the source record id, in Pacific time."""
    app = fixture.get("application", fixture)
    obj = next(o for o in app["objects"] if o["key"] == "object_3")
    fields = [dict(f) for f in obj["fields"] if f["key"] in DEMO_COPY_FIELDS]
    fields.append(_field(DEMO_COPY_MATCH, "short_text", "Source Id", "object_3", {}))
    copy = _object("object_3", "all_fields_test copy", "field_7", fields)
    return _app(
        DEMO_COPY_APP_ID, "Knackpy Development (copy)", "Pacific Time (US & Canada)", [copy]
    )
