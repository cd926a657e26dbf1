#!/usr/bin/env python3
"""Derives the project's compact view of Ajax's API from Ajax's own Swagger document.

Writes three committed files, so the project never carries Ajax's whole document:
  core/catalogue/routes.tsv       one line per served operation: METHOD, path template, operationId, class
  core/catalogue/command_bodies.json
                                  per command (and panic) operation with a body: the body's schema,
                                  references resolved, reduced to what the proxy checks (type, enum,
                                  required, properties, items)
  ajax-sim/spec/responses.json    per user-mode operation: its success status and a response body built
                                  from the spec's schema (and checked against that schema here)

Usage: tools/gen_catalogue.py [SWAGGER_YAML]   (default ../shared/ajax-api/swagger-1.135.0.yaml)
       tools/gen_catalogue.py --check [SWAGGER_YAML]   exits 1 when the committed files are stale
"""
import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ROOT / "core" / "catalogue" / "routes.tsv"
RESPONSES = ROOT / "ajax-sim" / "spec" / "responses.json"
COMMAND_BODIES = ROOT / "core" / "catalogue" / "command_bodies.json"
# Keywords of a body schema the proxy checks; everything else (formats, descriptions) is left to Ajax.
CHECKED_KEYWORDS = ("type", "enum", "required", "properties", "items")
METHODS = ("get", "put", "post", "delete", "patch")

# Paths the gateway serves itself (control plane), whatever the spec says of them.
ACCOUNT = [("POST", "/login", "login"), ("POST", "/refresh", "refresh"), ("POST", "/logout", "logout")]

HUB_READS = {"getHubBindings", "getHub"}


def route_class(method, path, op_id):
    """The class of an operation: what plans grant and what the throttle's lanes are made of."""
    if not re.match(r"^/user/\{(userId|invokerId)\}", path):
        return "public"  # account creation and password reset: no session, not served by the gateway
    if path.endswith("/commands/panic"):
        return "panic"
    if method == "GET":
        return "hub_read" if op_id in HUB_READS else "read"
    if "/commands/" in path or "/command/" in path or path.endswith("/command"):
        return "command"
    return "settings"


class SampleBuilder:
    """Builds one deterministic JSON value that is valid against a (Swagger 2.0) schema."""

    def __init__(self, definitions):
        self.definitions = definitions

    def resolve(self, schema):
        while "$ref" in schema:
            schema = self.definitions[schema["$ref"].split("/")[-1]]
        return schema

    def build(self, schema, depth=0, stack=()):
        ref = schema.get("$ref")
        if ref:
            name = ref.split("/")[-1]
            if name in stack:
                return None
            stack = stack + (name,)
        schema = self.resolve(schema)
        if "allOf" in schema:
            merged = {}
            for part in schema["allOf"]:
                value = self.build(part, depth, stack)
                if isinstance(value, dict):
                    merged.update(value)
            own = {k: v for k, v in schema.items() if k != "allOf"}
            if own.get("properties"):
                merged.update(self.build({**own, "type": "object"}, depth, stack) or {})
            return merged
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        if "enum" in schema:
            return self.enum_value(schema, kind)
        if kind == "object":
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            out = {}
            for name, sub in props.items():
                if depth > 6 and name not in required:
                    continue
                value = self.build(sub, depth + 1, stack)
                if value is None and name not in required:
                    continue
                out[name] = value
            for name in sorted(required - set(props)):
                out[name] = {}  # the spec requires names it never describes: any value is valid
            limit = schema.get("maxProperties")
            if limit is not None and len(out) > limit:
                keep = [k for k in out if k in required] + [k for k in out if k not in required]
                out = {k: out[k] for k in keep[:limit]}
            if not props and isinstance(schema.get("additionalProperties"), dict):
                out["key"] = self.build(schema["additionalProperties"], depth + 1, stack)
            return out
        if kind == "array":
            item = self.build(schema.get("items", {}), depth + 1, stack)
            count = max(1, schema.get("minItems", 1))
            return [] if item is None else [copy.deepcopy(item) for _ in range(count)]
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return int(schema.get("minimum", 1))
        if kind == "number":
            return float(schema.get("minimum", 1))
        if kind == "boolean":
            return False
        return None

    @staticmethod
    def enum_value(schema, kind):
        types = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
        for value in schema["enum"]:
            if kind not in types or isinstance(value, types[kind]):
                return value
        return str(schema["enum"][0])  # the spec's YAML typed an enum member other than its declared type

    @staticmethod
    def string(schema):
        fmt = schema.get("format", "")
        if fmt == "uuid":
            return "7fecf20b-4fe9-4412-b862-2f5e02480784"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "date":
            return "2026-01-01"
        if fmt.startswith("hex"):
            return "00A1B2C3"
        example = schema.get("example")
        low, high = schema.get("minLength", 0), schema.get("maxLength", 64)
        if isinstance(example, str) and low <= len(example) <= high:
            return example
        return "x" * max(low, min(4, high))


def json_schema(schema, definitions):
    """The Swagger schema as a JSON Schema document that jsonschema can check a value against."""
    doc = json.loads(json.dumps(schema, default=str))
    doc["definitions"] = json.loads(json.dumps(definitions, default=str))
    return string_enums_as_strings(doc)


def string_enums_as_strings(node):
    """YAML types `enum: [5, 10]` as integers even under `type: string`; the wire carries strings."""
    if isinstance(node, dict):
        if node.get("type") == "string" and isinstance(node.get("enum"), list):
            node["enum"] = [str(v) for v in node["enum"]]
        for value in node.values():
            string_enums_as_strings(value)
    elif isinstance(node, list):
        for value in node:
            string_enums_as_strings(value)
    return node


def checked_schema(schema, definitions, depth=0):
    """A body schema reduced to the keywords the proxy checks, references resolved and `allOf`
    merged. A polymorphic schema (`discriminator`) keeps only its own declared properties. Names in
    `required` that the schema does not declare are dropped: the spec has such slips (its `Panic`
    lists the fields of `location` as required at the top), and a panic must never be refused for
    the spec's mistake."""
    if depth > 8:
        return {}
    while "$ref" in schema:
        schema = definitions[schema["$ref"].split("/")[-1]]
    if "allOf" in schema:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"] + [{k: v for k, v in schema.items() if k != "allOf"}]:
            part = checked_schema(part, definitions, depth + 1)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        schema = merged
    out = {}
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind:
        out["type"] = kind
    if "enum" in schema:
        out["enum"] = [str(v) for v in schema["enum"]] if kind == "string" else schema["enum"]
    if "properties" in schema:
        out["properties"] = {
            name: checked_schema(prop, definitions, depth + 1) for name, prop in schema["properties"].items()
        }
        required = [r for r in schema.get("required", []) if r in schema["properties"]]
        if required:
            out["required"] = required
    if "items" in schema:
        out["items"] = checked_schema(schema["items"], definitions, depth + 1)
    return out


def command_bodies(spec, routes):
    """operationId -> checked body schema, for command and panic operations that take a body."""
    commands = {op_id for _, _, op_id, cls in routes if cls in ("command", "panic")}
    out = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in METHODS or op.get("operationId") not in commands:
                continue
            for param in op.get("parameters", []):
                if param.get("in") == "body":
                    out[op["operationId"]] = {
                        "required": bool(param.get("required")),
                        "schema": checked_schema(param["schema"], spec["definitions"]),
                    }
    return out


def success(op):
    for code in sorted(op.get("responses", {}), key=lambda c: int(c)):
        if 200 <= int(code) < 300:
            return int(code), op["responses"][code].get("schema")
    return 204, None


def generate(spec_path):
    spec = yaml.safe_load(Path(spec_path).read_text())
    definitions = spec["definitions"]
    builder = SampleBuilder(definitions)
    routes = [(m, p, o, "account") for m, p, o in ACCOUNT]
    responses = {}
    for path, ops in spec["paths"].items():
        if not path.startswith("/user"):
            continue
        for method, op in ops.items():
            if method not in METHODS:
                continue
            verb = method.upper()
            op_id = op["operationId"]
            routes.append((verb, path, op_id, route_class(verb, path, op_id)))
            status, schema = success(op)
            body = builder.build(schema) if schema else None
            if schema is not None:
                check(op_id, body, json_schema(schema, definitions))
            responses[op_id] = {"status": status, "body": body}
    for name in ("login", "refresh"):
        op = spec["paths"]["/" + name]["post"]
        status, schema = success(op)
        responses[name] = {"status": status, "body": builder.build(schema)}
    routes.sort(key=lambda r: (r[1], r[0]))
    header = "# generated by tools/gen_catalogue.py from Ajax Client API {}; do not edit\n".format(
        spec["info"]["version"]
    )
    tsv = header + "".join("\t".join(r) + "\n" for r in routes)
    resp = json.dumps(responses, indent=0, sort_keys=True, separators=(",", ":")) + "\n"
    bodies = json.dumps(command_bodies(spec, routes), indent=1, sort_keys=True) + "\n"
    return tsv, resp, bodies


def check(op_id, value, schema):
    try:
        import jsonschema
    except ImportError:
        return
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(value))
    if errors:
        raise SystemExit("sample for {} is not valid against its schema: {}".format(op_id, errors[0].message))


def main(argv):
    check_only = "--check" in argv
    args = [a for a in argv if a != "--check"]
    spec = args[0] if args else str(ROOT.parent / "shared" / "ajax-api" / "swagger-1.135.0.yaml")
    tsv, resp, bodies = generate(spec)
    outputs = ((ROUTES, tsv), (RESPONSES, resp), (COMMAND_BODIES, bodies))
    if check_only:
        stale = [str(p) for p, text in outputs if not p.exists() or p.read_text() != text]
        if stale:
            print("stale: " + ", ".join(stale) + " (run tools/gen_catalogue.py)")
            return 1
        print("catalogue up to date")
        return 0
    ROUTES.parent.mkdir(parents=True, exist_ok=True)
    RESPONSES.parent.mkdir(parents=True, exist_ok=True)
    for path, text in outputs:
        path.write_text(text)
    print("wrote {} routes, {} responses, {} command bodies".format(
        tsv.count("\n") - 1, len(json.loads(resp)), len(json.loads(bodies))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
