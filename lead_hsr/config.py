"""Config validation with messages a researcher can act on.

Snakemake's own `validate` reports the first jsonschema error without the key path; we list every error as
`key.path: got <value>; expected <what the schema allows>`. This module must stay light (no torch): the
Snakefile imports it at parse time, and the Slurm executor re-parses the Snakefile in every job.
"""
from pathlib import Path

import jsonschema
import yaml

from lead_hsr.errors import InputError


def load_schema(path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _expected(error) -> str:
    """What the failing schema keyword allows, in words."""
    schema, keyword = error.schema, error.validator
    if keyword == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"a known key (allowed: {', '.join(allowed)})"
    if keyword == "enum":
        return f"one of {schema['enum']}"
    if keyword == "type":
        return f"type {schema['type']}"
    if keyword == "required":
        return f"the required key(s) {schema['required']}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "pattern"):
        return f"{keyword} {schema[keyword]!r}"
    return f"{keyword}: {error.validator_value!r}"


def _describe(error) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{key}: unknown key(s) {extra}; expected {_expected(error)}"
    if error.validator == "required":
        return f"{key}: {error.message}; add it (see config/README.md)"
    value = error.instance if not isinstance(error.instance, (dict, list)) else type(error.instance).__name__
    return f"{key}: got {value!r}; expected {_expected(error)}"


def key_source(keys, default_configfile, cli_configfiles=(), cli_config=None) -> str:
    """Where a config value comes from, as Snakemake merges them: `--config` on the command line, else the last
    `--configfile` that sets it, else the workflow's default config file."""
    def sets(mapping) -> bool:
        for key in keys:
            if not isinstance(mapping, dict) or key not in mapping:
                return False
            mapping = mapping[key]
        return True

    if sets(cli_config or {}):
        return "--config on the command line"
    for path in reversed(list(cli_configfiles)):
        with open(path) as fh:
            if sets(yaml.safe_load(fh)):
                return str(path)
    return str(default_configfile)


def validate_config(config: dict, schema_path) -> None:
    """Raise InputError listing every violation of the schema (key, value, what is allowed)."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise InputError(
            f"invalid configuration (checked against {Path(schema_path).name}):\n  {lines}\n"
            "Every key is explained in config/README.md."
        )
