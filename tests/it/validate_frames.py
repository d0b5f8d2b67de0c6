"""Validates server frames (one JSON document a line on stdin) against the JSON Schemas of
docs/asyncapi.yaml, which are written from the protocol's description, not generated from the
Rust types: a frame the code sends that the document does not describe fails here."""
import json
import sys

import jsonschema
import yaml

SERVER_FRAMES = ["Hello", "Reply", "Error", "FleetSnapshot", "FleetDelta", "AlertsSnapshot", "AlertsDelta", "Telemetry", "CommandsSnapshot", "CommandsDelta", "EventsSnapshot", "EventsDelta"]

with open(sys.argv[1]) as f:
    document = yaml.safe_load(f)
schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in SERVER_FRAMES],
    "components": document["components"],
}
validator = jsonschema.Draft202012Validator(schema)
failures = 0
checked = 0
for number, line in enumerate(sys.stdin, 1):
    if not line.strip():
        continue
    checked += 1
    frame = json.loads(line)
    errors = list(validator.iter_errors(frame))
    if errors:
        failures += 1
        if failures <= 5:
            best = jsonschema.exceptions.best_match(errors)
            print(f"frame {number} does not match docs/asyncapi.yaml: {best.message} at {list(best.absolute_path)}: {line[:300]}")
print(f"{checked} frames checked, {failures} not as documented")
sys.exit(1 if failures else 0)
