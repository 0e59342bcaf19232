"""Semantic validation of objects, with kube-apiserver's field errors and messages.

The rules are those of k8s.io/kubernetes pkg/apis/*/validation where users meet them: names, labels,
Pod containers and ports, Deployment selectors, Service ports and types. Each check returns
``Cause`` values; the handler turns them into one 422 ``Invalid`` Status, as kube does. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleetnet.kube.status import Cause

_SUBDOMAIN = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_IANA = re.compile(r"^[-a-z0-9]+$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, with its examples joined as it joins them."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def go_value(v: Any) -> str:
    """How ``field.Invalid`` prints a value (%#v of Go for the types that reach us)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, Mapping):
        inner = ", ".join(f'"{k}":"{v[k]}"' for k in sorted(v))
        return "map[string]string{" + inner + "}"
    if v is None:
        return "null"
    return str(v)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", field, f"Invalid value: {go_value(value)}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def unsupported(field: str, value: Any, supported: list[str]) -> Cause:
    vals = ", ".join(f'"{s}"' for s in sorted(supported))
    return Cause("FieldValueNotSupported", field, f"Unsupported value: {go_value(value)}: supported values: {vals}")


def duplicate(field: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", field, f"Duplicate value: {go_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", field, f"Forbidden: {detail}")


def immutable(field: str, value: Any) -> Cause:
    return invalid(field, value, "field is immutable")


# --- names -------------------------------------------------------------------------------------


def dns1123_subdomain_problems(v: str) -> list[str]:
    out = []
    if len(v) > 253:
        out.append("must be no more than 253 characters")
    if not re.fullmatch(_SUBDOMAIN, v):
        out.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
                _SUBDOMAIN,
                "example.com",
            )
        )
    return out


def dns1123_label_problems(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL, v):
        out.append(
            regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character",
                _LABEL,
                "my-name",
                "123-abc",
            )
        )
    return out


def dns1035_label_problems(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not re.fullmatch(_DNS1035, v):
        out.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character",
                _DNS1035,
                "my-name",
                "abc-123",
            )
        )
    return out


NAME_RULES = {
    "subdomain": dns1123_subdomain_problems,
    "label": dns1123_label_problems,
    "dns1035": dns1035_label_problems,
}


def qualified_name_problems(key: str) -> list[str]:
    prefix, sep, name = key.rpartition("/")
    out: list[str] = []
    if sep and not prefix:
        out.append("prefix part must be non-empty")
    elif prefix:
        out += ["prefix part " + p for p in dns1123_subdomain_problems(prefix)]
    if not name:
        out.append("name part must be non-empty")
    else:
        if len(name) > 63:
            out.append("name part must be no more than 63 characters")
        if not re.fullmatch(_QUALIFIED, name):
            out.append(
                regex_error(
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                    "with an alphanumeric character",
                    _QUALIFIED,
                    "MyName",
                    "my.name",
                    "123-abc",
                )
            )
    return out


def label_value_problems(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_VALUE, v):
        out.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return out


def check_labels(field: str, value: Any) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(value, Mapping):
        return out
    for k, v in value.items():
        out += [invalid(field, k, p) for p in qualified_name_problems(str(k))]
        out += [invalid(field, v, p) for p in label_value_problems(str(v))]
    return out


def check_annotations(field: str, value: Any) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(value, Mapping):
        return out
    total = 0
    for k, v in value.items():
        out += [invalid(field, k, p) for p in qualified_name_problems(str(k))]
        total += len(str(k)) + len(str(v))
    if total > 256 * 1024:
        out.append(Cause("FieldValueTooLong", field, "Too long: must have at most 262144 bytes"))
    return out


def metadata(meta: Mapping[str, Any], name_rule: str, field: str = "metadata") -> list[Cause]:
    out: list[Cause] = []
    name = meta.get("name")
    if not name:
        out.append(required(f"{field}.name", "name or generateName is required"))
    else:
        out += [invalid(f"{field}.name", name, p) for p in NAME_RULES[name_rule](str(name))]
    out += check_labels(f"{field}.labels", meta.get("labels"))
    out += check_annotations(f"{field}.annotations", meta.get("annotations"))
    return out


# --- kinds -------------------------------------------------------------------------------------

PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _port_range(field: str, v: Any) -> list[Cause]:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
        return [invalid(field, v, "must be between 1 and 65535, inclusive")]
    return []


def iana_svc_name_problems(v: str) -> list[str]:
    out = []
    if len(v) > 15:
        out.append("must be no more than 15 characters")
    if not _IANA.match(v):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in v:
        out.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", v):
        out.append("must contain at least one letter (a-z)")
    if v.startswith("-") or v.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def containers(field: str, items: Any, required_one: bool = True) -> list[Cause]:
    out: list[Cause] = []
    if not items:
        return [required(field)] if required_one else []
    seen: set[str] = set()
    for i, c in enumerate(items if isinstance(items, list) else []):
        p = f"{field}[{i}]"
        if not isinstance(c, Mapping):
            continue
        name = c.get("name")
        if not name:
            out.append(required(f"{p}.name"))
        else:
            out += [invalid(f"{p}.name", name, x) for x in dns1123_label_problems(str(name))]
            if name in seen:
                out.append(duplicate(f"{p}.name", name))
            seen.add(str(name))
        if not c.get("image"):
            out.append(required(f"{p}.image"))
        port_names: set[str] = set()
        for j, port in enumerate(c.get("ports") or []):
            pp = f"{p}.ports[{j}]"
            if not isinstance(port, Mapping):
                continue
            if not port.get("containerPort"):
                out.append(required(f"{pp}.containerPort"))
            else:
                out += _port_range(f"{pp}.containerPort", port.get("containerPort"))
            proto = port.get("protocol", "TCP")
            if proto not in PROTOCOLS:
                out.append(unsupported(f"{pp}.protocol", proto, PROTOCOLS))
            if port.get("name"):
                out += [invalid(f"{pp}.name", port["name"], x) for x in iana_svc_name_problems(str(port["name"]))]
                if port["name"] in port_names:
                    out.append(duplicate(f"{pp}.name", port["name"]))
                port_names.add(str(port["name"]))
    return out


def pod_spec(field: str, spec: Any, template: bool = False) -> list[Cause]:
    if not isinstance(spec, Mapping):
        return [required(field)]
    out = containers(f"{field}.containers", spec.get("containers"))
    out += containers(f"{field}.initContainers", spec.get("initContainers"), required_one=False)
    rp = spec.get("restartPolicy", "Always")
    if template and rp != "Always":
        out.append(unsupported(f"{field}.restartPolicy", rp, ["Always"]))
    elif rp not in ("Always", "OnFailure", "Never"):
        out.append(unsupported(f"{field}.restartPolicy", rp, ["Always", "Never", "OnFailure"]))
    return out


def pod(obj: Mapping[str, Any]) -> list[Cause]:
    return metadata(obj.get("metadata") or {}, "subdomain") + pod_spec("spec", obj.get("spec"))


def _selector_matches(sel: Mapping[str, Any], labels_: Mapping[str, Any]) -> bool:
    from fleetnet.kube.selectors import from_label_selector_object

    return from_label_selector_object(sel).matches({str(k): str(v) for k, v in labels_.items()})


def workload(obj: Mapping[str, Any], kind: str) -> list[Cause]:
    """Deployment, ReplicaSet, DaemonSet: selector, template, replicas."""
    out = metadata(obj.get("metadata") or {}, "subdomain")
    spec = obj.get("spec") or {}
    if kind != "DaemonSet":
        r = spec.get("replicas", 1)
        if isinstance(r, int) and r < 0:
            out.append(invalid("spec.replicas", r, "must be greater than or equal to 0"))
    sel = spec.get("selector")
    if not sel:
        out.append(required("spec.selector"))
    elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
        out.append(invalid("spec.selector", "", "empty selector is invalid for deployment"))
    tpl = spec.get("template") or {}
    tlabels = (tpl.get("metadata") or {}).get("labels") or {}
    if sel and (sel.get("matchLabels") or sel.get("matchExpressions")) and not _selector_matches(sel, tlabels):
        out.append(invalid("spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`"))
    out += check_labels("spec.template.metadata.labels", tlabels)
    out += pod_spec("spec.template.spec", tpl.get("spec"), template=True)
    return out


SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def service(obj: Mapping[str, Any]) -> list[Cause]:
    out = metadata(obj.get("metadata") or {}, "dns1035")
    spec = obj.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    if typ not in SERVICE_TYPES:
        out.append(unsupported("spec.type", typ, SERVICE_TYPES))
    ports = spec.get("ports") or []
    headless = str(spec.get("clusterIP", "")).lower() == "none"
    if not ports and typ != "ExternalName" and not headless:
        out.append(required("spec.ports"))
    names: set[str] = set()
    for i, p in enumerate(ports):
        f = f"spec.ports[{i}]"
        if not isinstance(p, Mapping):
            continue
        name = p.get("name") or ""
        if len(ports) > 1 and not name:
            out.append(required(f"{f}.name"))
        if name:
            out += [invalid(f"{f}.name", name, x) for x in dns1123_label_problems(name)]
            if name in names:
                out.append(duplicate(f"{f}.name", name))
            names.add(name)
        out += _port_range(f"{f}.port", p.get("port"))
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            out.append(unsupported(f"{f}.protocol", proto, PROTOCOLS))
        tp = p.get("targetPort")
        if isinstance(tp, str):
            out += [invalid(f"{f}.targetPort", tp, x) for x in iana_svc_name_problems(tp)]
        elif tp is not None:
            out += _port_range(f"{f}.targetPort", tp)
    out += check_labels("spec.selector", spec.get("selector"))
    return out


def namespace(obj: Mapping[str, Any]) -> list[Cause]:
    return metadata(obj.get("metadata") or {}, "label")


def generic(obj: Mapping[str, Any], name_rule: str = "subdomain") -> list[Cause]:
    return metadata(obj.get("metadata") or {}, name_rule)


def validate(kind: str, obj: Mapping[str, Any]) -> list[Cause]:
    if kind == "Pod":
        return pod(obj)
    if kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        return workload(obj, kind)
    if kind == "Service":
        return service(obj)
    if kind == "Namespace":
        return namespace(obj)
    if kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
        return generic(obj) or policy(obj)
    if kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        return generic(obj, "subdomain") if ":" not in str((obj.get("metadata") or {}).get("name", "")) else []
    return generic(obj)


def policy(obj: Mapping[str, Any]) -> list[Cause]:
    """A Cilium policy outside the subset fleetnet enforces is refused when it is written (as Cilium's
    CRD schema refuses a malformed one), so nothing half understood is ever enforced."""
    from fleetnet.errors import InvalidInput
    from fleetnet.plan.policy.parse import parse_policy

    md = obj.get("metadata") or {}
    # what the server keeps in metadata (uid, managedFields, ...) is not the policy's to explain
    doc = {**obj, "metadata": {k: md[k] for k in ("name", "namespace", "labels", "annotations") if k in md}}
    doc.pop("status", None)
    try:
        parse_policy(doc)
    except InvalidInput as e:
        return [Cause("FieldValueInvalid", "", str(e))]
    return []
