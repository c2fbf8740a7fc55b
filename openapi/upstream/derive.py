#!/usr/bin/env python3
"""Derive Gate's STP surface from an official Python SDK release (`gate-api`).

Gate publishes no OpenAPI document, but its SDKs are generated from its private one. This
tool fetches one `gate-api` wheel (no dependencies, nothing installed, nothing executed),
parses the generated source with `ast`, and writes an OpenAPI 3.0 fragment of the operations
our fragment covers, with the models they use:

    python3 openapi/upstream/derive.py refresh [VERSION|latest] [--pin]
        fetch the wheel, write openapi/upstream/gate-api-VERSION.yaml, then run the drift
        check (`cargo test --all-features --test suite drift::`) against it and show its report. VERSION defaults
        to the pinned one (openapi/upstream/PINNED); --pin makes VERSION the pinned one.
    python3 openapi/upstream/derive.py derive WHEEL OUTPUT
        the same derivation from a wheel already on disk, without network or cargo.

Why the report comes from cargo: the comparison lives in one place, tests/suite/drift.rs, which
the test suite runs without network or Python; running it here guarantees the refresh and
the suite can never disagree.

Tests of this tool: `python3 -m unittest discover -s openapi/upstream`.

Python 3.11 standard library only. The output is byte-for-byte reproducible: keys are
written in a fixed order by the small YAML emitter below, strings are always quoted.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PINNED_FILE = HERE / "PINNED"

# Every operation under this prefix is Gate's STP surface: all of it is derived, and the
# drift check fails when our fragment lacks one.
STP_PREFIX = "/account/stp_groups"
# The other operations our fragment covers (or is about to): derived so they are compared
# as soon as our fragment has them.
EXTRA_OPERATIONS = [
    ("GET", "/spot/time"),
    ("GET", "/account/detail"),
    ("GET", "/sub_accounts"),
]

# Python SDK types of scalars. The generator maps int32 and int64 both to `int` and
# float and double both to `float`, so integer and number formats cannot be recovered.
SCALARS = {
    "int": {"type": "integer"},
    "str": {"type": "string"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "object": {"type": "object"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "file": {"type": "string", "format": "binary"},
}


class DeriveError(Exception):
    """The SDK source does not have the shape this tool knows how to read."""


# --------------------------------------------------------------------------- reading


def read_wheel(wheel: Path) -> dict[str, str]:
    """The `gate_api/...py` sources of a wheel, by path."""
    sources = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("gate_api/") and name.endswith(".py"):
                sources[name] = archive.read(name).decode("utf-8")
    if not sources:
        raise DeriveError(f"{wheel}: no gate_api package inside")
    return sources


def literal(node: ast.AST):
    """The value of a literal expression (string, list of strings...)."""
    try:
        return ast.literal_eval(node)
    except ValueError as error:
        raise DeriveError(f"line {getattr(node, 'lineno', '?')}: not a literal") from error


def docstring_parts(function: ast.FunctionDef) -> tuple[str, str, dict[str, tuple[str, str]]]:
    """Summary, description and `:param TYPE NAME: TEXT` entries of an SDK method."""
    doc = ast.get_docstring(function, clean=True) or ""
    lines = [line.replace("# noqa: E501", "").rstrip() for line in doc.splitlines()]
    summary = lines[0].strip() if lines else ""
    description = ""
    if len(lines) > 2 and lines[1] == "" and not lines[2].startswith("This method makes"):
        description = lines[2].strip()
    params = {}
    for line in lines:
        match = re.match(r"^:param (dict\([^)]*\)|\S+) (\w+):(.*)$", line.strip())
        if match:
            params[match.group(2)] = (match.group(1), match.group(3).strip())
    return summary, description, params


def strip_required(text: str) -> str:
    return re.sub(r"\s*\(required\)$", "", text).strip()


def call_api_call(function: ast.FunctionDef) -> ast.Call:
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "call_api"
        ):
            return node
    raise DeriveError(f"{function.name}: no call_api(...)")


def keyword(call: ast.Call, name: str):
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def subscript_target(node: ast.AST) -> tuple[str, str] | None:
    """`header_params['X'] = local_var_params['y']` -> ('X', 'y')."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return None
    target, value = node.targets[0], node.value
    if not (isinstance(target, ast.Subscript) and isinstance(value, ast.Subscript)):
        return None
    if not (isinstance(value.value, ast.Name) and value.value.id == "local_var_params"):
        return None
    if not isinstance(target.value, ast.Name):
        return None
    return target.value.id, (literal(target.slice), literal(value.slice))


def parse_operation(function: ast.FunctionDef) -> dict:
    """One `*_with_http_info` method -> the facts of its operation."""
    method_name = function.name[: -len("_with_http_info")]
    required = [arg.arg for arg in function.args.args if arg.arg != "self"]
    summary, description, doc_params = docstring_parts(function)
    call = call_api_call(function)
    path, http_method = literal(call.args[0]), literal(call.args[1])
    response_type = literal(keyword(call, "response_type"))
    params, body, consumes, produces, auth = [], None, [], [], []
    for node in ast.walk(function):
        assigned = subscript_target(node)
        if assigned and assigned[0] in ("path_params", "header_params"):
            wire_name, python_name = assigned[1]
            location = "path" if assigned[0] == "path_params" else "header"
            params.append((location, wire_name, python_name))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("query_params", "form_params")
        ):
            wire_name, value = node.args[0].elts
            location = "query" if node.func.value.id == "query_params" else "formData"
            params.append((location, literal(wire_name), literal(value.slice)))
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "body_params" and isinstance(node.value, ast.Subscript):
                body = literal(node.value.slice)
            if target == "auth_settings":
                auth = literal(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "select_header_accept":
                produces = literal(node.args[0])
            if node.func.attr == "select_header_content_type":
                consumes = literal(node.args[0])
    if any(location == "formData" for location, _, _ in params):
        raise DeriveError(f"{method_name}: form parameters are not supported")

    def typed(python_name: str) -> tuple[str, str]:
        if python_name not in doc_params:
            raise DeriveError(f"{method_name}: no :param line for {python_name}")
        python_type, text = doc_params[python_name]
        return python_type, strip_required(text)

    return {
        "method_name": method_name,
        "http_method": http_method.lower(),
        "path": path,
        "summary": summary,
        "description": description,
        "params": [
            (location, wire_name, python_name in required, *typed(python_name))
            for location, wire_name, python_name in params
        ],
        "body": None if body is None else (body in required, *typed(body)),
        "consumes": consumes,
        "produces": produces,
        "response_type": response_type,
        "auth": auth,
    }


def parse_operations(sources: dict[str, str]) -> list[dict]:
    operations = []
    for name in sorted(sources):
        if not (name.startswith("gate_api/api/") and name.endswith("_api.py")):
            continue
        tree = ast.parse(sources[name], filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_with_http_info"):
                call = call_api_call(node)
                key = (literal(call.args[1]).upper(), literal(call.args[0]))
                # Only what we cover is read in full: an odd method elsewhere in the SDK
                # must not stop a refresh.
                if key[1].startswith(STP_PREFIX) or key in EXTRA_OPERATIONS:
                    operation = parse_operation(node)
                    operation["source"] = name
                    operations.append(operation)
    return operations


def model_modules(sources: dict[str, str]) -> dict[str, str]:
    """Model class name -> source path, from `gate_api/models/__init__.py`."""
    tree = ast.parse(sources["gate_api/models/__init__.py"])
    modules = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module.startswith("gate_api.models."):
            for alias in node.names:
                modules[alias.name] = node.module.replace(".", "/") + ".py"
    return modules


def parse_model(source: str, class_name: str) -> dict:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return model_facts(node)
    raise DeriveError(f"model {class_name}: class not found")


def model_facts(class_node: ast.ClassDef) -> dict:
    types, wire_names, required, descriptions = {}, {}, [], {}
    for node in class_node.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "openapi_types":
                types = literal(node.value)
            if node.targets[0].id == "attribute_map":
                wire_names = literal(node.value)
        if isinstance(node, ast.FunctionDef) and node.name in types:
            setter = any(
                isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list
            )
            if setter:
                if rejects_none(node):
                    required.append(node.name)
            else:
                doc = ast.get_docstring(node, clean=True) or ""
                lines = [line.replace("# noqa: E501", "").strip() for line in doc.splitlines()]
                # Gets the x of this Y.\n\nDESCRIPTION\n\n:return: ...
                if len(lines) > 2 and lines[1] == "" and not lines[2].startswith(":return:"):
                    descriptions[node.name] = lines[2]
    class_doc = ast.get_docstring(class_node, clean=True) or ""
    return {
        "types": types,
        "wire_names": wire_names,
        "required": required,
        "descriptions": descriptions,
        "auto": class_doc.startswith("NOTE: This class is auto generated"),
    }


def rejects_none(setter: ast.FunctionDef) -> bool:
    """Does the setter raise on `None` (the generator's mark of a required field)?"""
    for node in ast.walk(setter):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            args = node.exc.args
            if args and isinstance(args[0], ast.Constant) and "must not be `None`" in str(
                args[0].value
            ):
                return True
    return False


# --------------------------------------------------------------------------- building


def schema_of(python_type: str, models: set[str]) -> dict:
    """An SDK type string (`int`, `list[StpGroup]`, `dict(str, int)`) -> a schema."""
    python_type = python_type.strip()
    if python_type.startswith("gate_api."):
        python_type = python_type[len("gate_api.") :]
    if python_type in SCALARS:
        return dict(SCALARS[python_type])
    match = re.fullmatch(r"list\[(.+)\]", python_type)
    if match:
        return {"type": "array", "items": schema_of(match.group(1), models)}
    match = re.fullmatch(r"dict\(str, (.+)\)", python_type)
    if match:
        return {"type": "object", "additionalProperties": schema_of(match.group(1), models)}
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", python_type):
        models.add(python_type)
        return {"$ref": f"#/components/schemas/{python_type}"}
    raise DeriveError(f"unknown SDK type {python_type!r}")


def with_description(schema: dict, description: str) -> dict:
    if not description:
        return schema
    if "$ref" in schema:
        # OpenAPI 3.0 ignores siblings of $ref; wrap to keep the text.
        return {"allOf": [schema], "description": description}
    return {**schema, "description": description}


def lower_camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def build_operation(operation: dict, models: set[str]) -> dict:
    out = {
        "operationId": lower_camel(operation["method_name"]),
        "x-sdk-method": operation["method_name"],
        "summary": operation["summary"],
    }
    if operation["description"]:
        out["description"] = operation["description"]
    out["security"] = [{name: []} for name in operation["auth"]]
    params = []
    for location, wire_name, required, python_type, text in operation["params"]:
        param = {"name": wire_name, "in": location, "required": required or location == "path"}
        if text:
            param["description"] = text
        param["schema"] = schema_of(python_type, models)
        param["x-sdk-type"] = python_type
        params.append(param)
    if params:
        out["parameters"] = params
    if operation["body"] is not None:
        required, python_type, text = operation["body"]
        schema = with_description(schema_of(python_type, models), text)
        body = {"required": required, "content": {}}
        for media in operation["consumes"] or ["application/json"]:
            body["content"][media] = {"schema": schema}
        body["x-sdk-type"] = python_type
        out["requestBody"] = body
    response = {"description": "Success."}
    if operation["response_type"]:
        schema = schema_of(operation["response_type"], models)
        response["content"] = {
            media: {"schema": schema} for media in operation["produces"] or ["application/json"]
        }
        response["x-sdk-type"] = operation["response_type"]
    out["responses"] = {"200": response}
    out["x-sdk-source"] = operation["source"]
    return out


def build_model(name: str, facts: dict, models: set[str]) -> dict:
    out = {"type": "object", "x-sdk-class": name}
    required = [facts["wire_names"][field] for field in facts["required"]]
    if required:
        out["required"] = required
    properties = {}
    for field, python_type in facts["types"].items():
        schema = with_description(
            schema_of(python_type, models), facts["descriptions"].get(field, "")
        )
        schema["x-sdk-type"] = python_type
        properties[facts["wire_names"][field]] = schema
    out["properties"] = properties
    return out


def derive(sources: dict[str, str]) -> dict:
    """The whole fragment (without header) of one SDK release's sources."""
    operations = parse_operations(sources)
    if not any(op["path"].startswith(STP_PREFIX) for op in operations):
        raise DeriveError(f"no operation under {STP_PREFIX} found")
    models: set[str] = set()
    paths: dict[str, dict] = {}
    for operation in sorted(operations, key=lambda op: (op["path"], op["http_method"])):
        built = build_operation(operation, models)
        paths.setdefault(operation["path"], {})[operation["http_method"]] = built
    modules = model_modules(sources)
    schemas: dict[str, dict] = {}
    # Models pull in models (AccountDetail -> AccountDetailKey): walk to a fixed point.
    while models - schemas.keys():
        for name in sorted(models - schemas.keys()):
            if name not in modules:
                raise DeriveError(f"model {name} is not in gate_api/models/__init__.py")
            facts = parse_model(sources[modules[name]], name)
            schemas[name] = build_model(name, facts, models)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Gate API v4 (derived from the gate-api Python SDK)", "version": ""},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiv4": {"type": "apiKey", "in": "header", "name": "KEY"}},
            "schemas": {name: schemas[name] for name in sorted(schemas)},
        },
    }


# --------------------------------------------------------------------------- writing

PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.-]*$")


def yaml_scalar(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    # JSON's double-quoted strings are valid YAML double-quoted strings.
    return json.dumps(value, ensure_ascii=True)


def yaml_key(key: str) -> str:
    reserved = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
    if PLAIN_KEY.match(key) and key.lower() not in reserved:
        return key
    return json.dumps(key, ensure_ascii=True)


def emit(value, indent: int, out: io.StringIO) -> None:
    """Block-style YAML of nested dicts/lists/scalars, in insertion order."""
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.write(f"{pad}{yaml_key(key)}:\n")
                emit(item, indent + 1, out)
            else:
                empty = "{}" if isinstance(item, dict) else "[]"
                text = empty if isinstance(item, (dict, list)) else yaml_scalar(item)
                out.write(f"{pad}{yaml_key(key)}: {text}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = io.StringIO()
                emit(item, indent + 1, sub)
                text = sub.getvalue()
                # First line goes after the dash, the rest keep their indentation.
                out.write(f"{pad}- {text[len(pad) + 2:]}")
            else:
                empty = "{}" if isinstance(item, dict) else "[]"
                text = empty if isinstance(item, (dict, list)) else yaml_scalar(item)
                out.write(f"{pad}- {text}\n")
    else:
        raise DeriveError("emit: top level must be a mapping or a list")


def render(fragment: dict, version: str, wheel_name: str, wheel_sha256: str) -> str:
    fragment = dict(fragment)
    fragment["info"] = {**fragment["info"], "version": version}
    out = io.StringIO()
    out.write(
        f"# Derived from the official Python SDK gate-api {version}\n"
        f"# ({wheel_name}, sha256 {wheel_sha256})\n"
        "# by openapi/upstream/derive.py, which parses the package source with `ast` and\n"
        "# never runs it. Do not edit: regenerate with\n"
        f"#   python3 openapi/upstream/derive.py refresh {version}\n"
        "# Known blind spots of the SDK: int32/int64 and float/double are not told apart\n"
        "# (no integer or number formats), operationIds survive only in snake_case\n"
        "# (`x-sdk-method`; operationId here is its lowerCamelCase), error responses and\n"
        "# enums/limits of fields are not derived.\n"
    )
    emit(fragment, 0, out)
    return out.getvalue()


def derive_wheel(wheel: Path, output: Path) -> None:
    match = re.match(r"gate_api-([^-]+)-", wheel.name)
    if not match:
        raise DeriveError(f"{wheel.name}: not a gate_api wheel name")
    version = match.group(1)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    text = render(derive(read_wheel(wheel)), version, wheel.name, digest)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


def fetch_wheel(version: str, directory: Path) -> Path:
    """Download one gate-api wheel (no dependencies) with pip; nothing is installed."""
    requirement = "gate-api" if version == "latest" else f"gate-api=={version}"
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--quiet", "--dest", str(directory), requirement,
    ]  # fmt: skip
    completed = subprocess.run(command)
    if completed.returncode != 0:
        raise DeriveError(
            f"pip could not download {requirement} (exit {completed.returncode}); "
            "check the version against the release list pip printed"
        )
    wheels = sorted(directory.glob("gate_api-*.whl"))
    if len(wheels) != 1:
        raise DeriveError(f"expected one gate_api wheel in {directory}, found {wheels}")
    return wheels[0]


def pinned_version() -> str:
    return PINNED_FILE.read_text(encoding="utf-8").strip()


def refresh(version: str, pin: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="gate-api-wheel-") as scratch:
        wheel = fetch_wheel(version, Path(scratch))
        resolved = re.match(r"gate_api-([^-]+)-", wheel.name).group(1)
        output = HERE / f"gate-api-{resolved}.yaml"
        derive_wheel(wheel, output)
    if pin:
        PINNED_FILE.write_text(resolved + "\n", encoding="utf-8")
        print(f"pinned {resolved} in {PINNED_FILE.relative_to(ROOT)}")
    # The report is the panic message; a backtrace under it would only bury it.
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    if resolved != pinned_version():
        env["GATE_STP_UPSTREAM"] = str(output)
    print(f"== drift report: openapi/gate-stp.yaml vs gate-api {resolved}", flush=True)
    result = subprocess.run(
        ["cargo", "test", "--quiet", "--all-features", "--test", "suite", "drift::our_fragment_matches_upstream",
         "--", "--nocapture"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    refresh_parser = commands.add_parser("refresh", help="fetch, derive, report drift")
    refresh_parser.add_argument("version", nargs="?", help="a release, or `latest`")
    refresh_parser.add_argument("--pin", action="store_true", help="make it the pinned one")
    derive_parser = commands.add_parser("derive", help="derive from a wheel on disk")
    derive_parser.add_argument("wheel", type=Path)
    derive_parser.add_argument("output", type=Path)
    args = parser.parse_args()
    try:
        if args.command == "derive":
            derive_wheel(args.wheel, args.output)
            return 0
        return refresh(args.version or pinned_version(), args.pin)
    except (DeriveError, subprocess.CalledProcessError, OSError) as error:
        print(f"derive.py: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
