"""Validates HTTP answers against docs/openapi.yaml (and the record schemas it takes from
docs/asyncapi.yaml), written from the API's description, not generated from the Rust types.
Reads one JSON document a line on stdin: {"path": ..., "status": ..., "body": ...}; an answer
whose path, status or body the document does not describe fails."""
import json
import re
import sys

import jsonschema
import yaml

with open(sys.argv[1]) as f:
    openapi = yaml.safe_load(f)
with open(sys.argv[2]) as f:
    asyncapi = yaml.safe_load(f)


def rewrite(node, own):
    """Points every schema reference into one root: #/$defs/openapi/X or #/$defs/asyncapi/X."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if value.startswith("asyncapi.yaml#/components/schemas/"):
                    value = "#/$defs/asyncapi/" + value.rsplit("/", 1)[1]
                elif value.startswith("#/components/schemas/"):
                    value = f"#/$defs/{own}/" + value.rsplit("/", 1)[1]
            out[key] = rewrite(value, own)
        return out
    if isinstance(node, list):
        return [rewrite(item, own) for item in node]
    return node


defs = {
    "openapi": rewrite(openapi["components"]["schemas"], "openapi"),
    "asyncapi": rewrite(asyncapi["components"]["schemas"], "asyncapi"),
}
templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in openapi["paths"]]


def response_of(path, status):
    for pattern, template in templates:
        if pattern.match(path):
            responses = openapi["paths"][template]["get"]["responses"]
            response = responses.get(str(status))
            if response is None:
                return template, None
            if "$ref" in response:
                response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            return template, response
    return None, None


failures = 0
checked = 0
for number, line in enumerate(sys.stdin, 1):
    if not line.strip():
        continue
    checked += 1
    answer = json.loads(line)
    template, response = response_of(answer["path"], answer["status"])
    problem = None
    if template is None:
        problem = "no such path in docs/openapi.yaml"
    elif response is None:
        problem = f"status {answer['status']} is not documented for {template}"
    else:
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            root = dict(rewrite(schema, "openapi"))
            root["$defs"] = defs
            errors = list(jsonschema.Draft202012Validator(root).iter_errors(answer["body"]))
            if errors:
                best = jsonschema.exceptions.best_match(errors)
                problem = f"{best.message} at {list(best.absolute_path)}"
    if problem:
        failures += 1
        if failures <= 5:
            print(f"answer {number} ({answer['path']} {answer['status']}): {problem}: {json.dumps(answer['body'])[:300]}")
print(f"{checked} HTTP answers checked, {failures} not as documented")
sys.exit(1 if failures else 0)
