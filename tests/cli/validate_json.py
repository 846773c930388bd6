#!/usr/bin/env python3
"""Validates JSON documents against a JSON Schema; prints "ok" or the first errors and exits 1.

usage: validate_json.py SCHEMA.json DOC.json [DOC.json ...]

Only the standard library is needed: a small validator for the keywords kiln's schemas use (type, enum,
required, properties, additionalProperties, items, minItems, maxItems, minimum, anyOf, local $ref). A keyword
outside that set is an error, so a schema never passes because a keyword was silently skipped. Where the `jsonschema`
package is installed, each document is also checked with it (draft 2020-12), so the two agree.
"""
import json
import sys

ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}
KEYWORDS = {"type", "enum", "required", "properties", "additionalProperties", "items", "minItems", "maxItems",
            "minimum", "anyOf", "$ref"} | ANNOTATIONS

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def resolve(root, ref):
    if not ref.startswith("#/"):
        raise ValueError(f"$ref {ref!r}: only local references (#/...) are supported")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def check(root, schema, value, path, errors):
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"schema at {path}: unsupported keyword(s) {sorted(unknown)}")
    if "$ref" in schema:
        check(root, resolve(root, schema["$ref"]), value, path, errors)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            errors.append(f"{path}: {json.dumps(value)[:80]} is not of type {'/'.join(types)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {json.dumps(value)} is not one of {schema['enum']}")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if "anyOf" in schema:
        branches = []
        for sub in schema["anyOf"]:
            e = []
            check(root, sub, value, path, e)
            if not e:
                break
            branches.append(e)
        else:
            # The branch of the value's own type tells what is wrong; a branch of another type only says "not
            # an array".
            def rank(e):
                return (len(e) == 1 and e[0].startswith(f"{path}: ") and "is not of type" in e[0], len(e))
            errors.append(f"{path}: matches none of anyOf; closest branch:")
            errors.extend("  " + e for e in min(branches, key=rank))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: required field '{key}' is missing")
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            if key in props:
                check(root, props[key], v, f"{path}.{key}", errors)
            elif extra is False:
                errors.append(f"{path}: field '{key}' is not in the schema")
            elif isinstance(extra, dict):
                check(root, extra, v, f"{path}.{key}", errors)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: {len(value)} item(s), fewer than {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: {len(value)} item(s), more than {schema['maxItems']}")
        if "items" in schema:
            for i, v in enumerate(value):
                check(root, schema["items"], v, f"{path}[{i}]", errors)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schema = json.load(open(argv[1]))
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    failed = False
    for doc_path in argv[2:]:
        doc = json.load(open(doc_path))
        errors = []
        check(schema, schema, doc, "$", errors)
        if jsonschema is not None:
            v = jsonschema.Draft202012Validator(schema)
            errors += [f"jsonschema: {e.json_path}: {e.message[:300]}" for e in v.iter_errors(doc)]
        if errors:
            failed = True
            print(f"{doc_path}: {len(errors)} error(s)")
            for e in errors[:20]:
                print("  " + e)
    if not failed:
        print("ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
