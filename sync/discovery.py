"""Optional Home Assistant MQTT discovery for the headline sensors.

Each sensor reads the store's ``aggregates`` topic with a value template, and
follows the ``available`` topic, so Home Assistant shows it unavailable when the
box is offline. Suppressed values (fewer than k) arrive as null and show as
unknown.
"""

from __future__ import annotations

import json

from sync.contract import AGGREGATES, AVAILABLE, OFFLINE, ONLINE, Topics

# (object id, name, template, unit)
SENSORS = (
    (
        "footfall_in",
        "Footfall in",
        "{{ value_json.footfall['in'] if value_json.footfall else none }}",
        "people",
    ),
    (
        "footfall_out",
        "Footfall out",
        "{{ value_json.footfall['out'] if value_json.footfall else none }}",
        "people",
    ),
    (
        "occupancy_mean",
        "Occupancy (mean)",
        "{{ value_json.occupancy['mean'] if value_json.occupancy else none }}",
        "people",
    ),
    (
        "occupancy_max",
        "Occupancy (max)",
        "{{ value_json.occupancy['max'] if value_json.occupancy else none }}",
        "people",
    ),
)


def discovery_messages(
    topics: Topics, discovery_prefix: str, store_name: str
) -> list[tuple[str, bytes]]:
    """``(topic, retained config payload)`` for every headline sensor."""
    device = {
        "identifiers": [f"store-edge-{topics.store}"],
        "name": store_name,
        "manufacturer": "store-edge",
        "model": "in-store analytics box",
    }
    messages = []
    for object_id, name, template, unit in SENSORS:
        unique_id = f"{topics.store}_{object_id}"
        config = {
            "name": name,
            "unique_id": unique_id,
            "object_id": unique_id,
            "state_topic": topics(AGGREGATES),
            "value_template": template,
            "unit_of_measurement": unit,
            "state_class": "measurement",
            "availability_topic": topics(AVAILABLE),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
        }
        topic = f"{discovery_prefix}/sensor/{topics.store}/{object_id}/config"
        messages.append((topic, json.dumps(config, separators=(",", ":")).encode()))
    return messages
