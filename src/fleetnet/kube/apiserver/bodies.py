"""Request bodies in and response bodies out: JSON or YAML, with kube's field validation modes.

``fieldValidation=Strict`` refuses unknown and duplicate fields (400, ``strict decoding error: ...``),
``Warn`` (the default since Kubernetes 1.23) accepts them and says so in ``Warning`` headers, and
``Ignore`` drops them silently — as kube-apiserver does for every write.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from fleetnet.kube import status as st
from fleetnet.kube.resources import Resource

if TYPE_CHECKING:
    from fleetnet.kube.apiserver.call import Call

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit for a request body


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def parse_any(body: bytes, content_type: str) -> tuple[Any, list[str]]:
    """The document of a body and the paths of duplicate fields found in it."""
    ct = content_type.split(";")[0].strip().lower()
    if ct == "application/vnd.kubernetes.protobuf":
        from fleetnet.kube import protowire

        try:
            return protowire.decode(body), []
        except protowire.ProtoError as e:
            raise st.unsupported_media_type(ct, ("application/json", "application/yaml")) from e
    if ct in ("application/yaml", "application/apply-patch+yaml", "application/x-yaml", "text/yaml"):
        try:
            return yaml.load(body, Loader=yaml.CSafeLoader), []
        except yaml.YAMLError as e:
            raise st.bad_request(f"error converting YAML to JSON: {e}") from e
    from fleetnet.kube import validation

    try:
        return validation.decode_json_strict(body)
    except ValueError as e:
        raise st.bad_request(f"json: {e}") from e


def decode_body(call: Call, res: Resource | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The request's object, checked per ``fieldValidation``; returns (object, response headers)."""
    ctype = call.headers.get("Content-Type") or call.headers.get("content-type") or "application/json"
    if not call.body:
        raise st.bad_request("the body of the request was empty")
    obj, duplicates = parse_any(call.body, ctype)
    if not isinstance(obj, dict):
        what = res.kind if res is not None else "object"
        raise st.bad_request(f"the object provided is unrecognized (must be of type {what})")
    problems: list[str] = [f'json: duplicate field "{d}"' for d in duplicates]
    if res is not None:
        from fleetnet.kube import validation

        wrong = validation.type_errors(res.api_version, res.kind, obj)
        if wrong:  # a value that cannot be decoded is refused whatever fieldValidation says
            raise st.bad_request(wrong[0])
        problems += [f'unknown field "{p}"' for p in validation.unknown_fields(res.api_version, res.kind, obj)]
    return obj, _apply_mode(call, problems)


def _apply_mode(call: Call, problems: list[str]) -> dict[str, str]:
    mode = call.query.get("fieldValidation", "Warn")
    if mode not in ("Strict", "Warn", "Ignore"):
        raise st.bad_request(f"fieldValidation parameter unsupported: {mode}; valid values are Ignore, Warn, Strict")
    if not problems or mode == "Ignore":
        return {}
    if mode == "Strict":
        raise st.bad_request("strict decoding error: " + ", ".join(problems))
    return {"Warning": ", ".join(f'299 - "{p.replace(chr(34), chr(92) + chr(34))}"' for p in problems)}
