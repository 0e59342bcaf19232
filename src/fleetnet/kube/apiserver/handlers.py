"""The generic REST handlers: get, list, create, update, patch, delete and deletecollection for every
registered resource, with the status and scale subresources (kube's generic registry store).

Every handler runs on the server's one event loop and does its read-check-write without awaiting,
so optimistic concurrency needs no locks: a write carrying a stale ``resourceVersion`` is a 409.
Objects are JSON dicts; what is stored is what ``kubectl get -o json`` shows.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fleetnet.kube import status as st
from fleetnet.kube.apiserver import strategy
from fleetnet.kube.apiserver.admission import Admission
from fleetnet.kube.apiserver.bodies import decode_body, encode
from fleetnet.kube.apiserver.call import Call, Reply
from fleetnet.kube.apiserver.request import wants
from fleetnet.kube.apiserver.storage import Entry, Storage
from fleetnet.kube.apiserver.validate import validate
from fleetnet.kube.resources import Registry, Resource
from fleetnet.kube.selectors import parse_field_selector, parse_label_selector
from fleetnet.kube.status import ApiError

Entries = list[Entry]
Objs = list[dict[str, Any]]


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, encode(obj), headers=headers or {})


class Handlers:
    def __init__(self, storage: Storage, registry: Registry, admission: Admission) -> None:
        self.storage = storage
        self.registry = registry
        self.admission = admission
        self.clock: Callable[[], float] = time.time
        admission.handlers = self
        for r in registry.resources:
            storage.register_prefix(_prefix(r))

    # ------------------------------------------------------------------ helpers
    def key(self, res: Resource, namespace: str | None, name: str) -> str:
        return res.storage_key(namespace if res.namespaced else None, name)

    def get_entry(self, res: Resource, namespace: str | None, name: str) -> Entry:
        e = self.storage.get(self.key(res, namespace, name))
        if e is None:
            raise st.not_found(res.plural, res.group, name)
        return e

    def _now(self) -> str:
        return strategy.now_rfc3339(self.clock())

    def _manager(self, call: Call) -> str:
        m = call.query.get("fieldManager")
        if m:
            return m
        from fleetnet.kube import fieldmanager

        return fieldmanager.default_manager(call.user_agent)

    def _track(
        self, res: Resource, old: dict[str, Any] | None, new: dict[str, Any], call: Call, subresource: str
    ) -> None:
        from fleetnet.kube import fieldmanager, schema

        fieldmanager.update_managed_fields(
            old,
            new,
            self._manager(call),
            "Update",
            subresource,
            schema.root(res.api_version, res.kind),
            self._now(),
        )

    # ------------------------------------------------------------------ reads
    def get(self, call: Call) -> Reply:
        res, info = call.info.resource, call.info
        assert info.name is not None
        e = self.get_entry(res, info.namespace, info.name)
        if info.subresource == "scale":
            return _json(200, scale_of(res, e.obj))
        table = wants(call.accept, "Table")
        if table is not None:
            return _json(200, self.table(res, [e.obj], call, str(e.rv)))
        if wants(call.accept, "PartialObjectMetadata") is not None:
            return _json(200, partial(e.obj))
        return Reply(200, e.raw)

    def select(self, res: Resource, namespace: str | None, query: Mapping[str, str]) -> Entries:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), res.plural)
        prefix = _prefix(res) + (f"{namespace}/" if res.namespaced and namespace else "")
        name = fields.exact_name()
        if name is not None and (namespace or not res.namespaced):
            e = self.storage.get(self.key(res, namespace, name))
            entries = [e] if e is not None else []
        else:
            entries = self.storage.list(prefix)
        if not labels.empty:
            entries = [e for e in entries if labels.matches((e.obj.get("metadata") or {}).get("labels"))]
        if fields.requirements:
            entries = [e for e in entries if fields.matches(e.obj)]
        return entries

    def list(self, call: Call) -> Reply:
        res, info = call.info.resource, call.info
        entries = self.select(res, info.namespace, call.query)
        rv = str(self.storage.rev)
        entries, cont, remaining = paginate(entries, call.query, self.storage.rev)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        if wants(call.accept, "Table") is not None:
            t = self.table(res, [e.obj for e in entries], call, rv)
            t["metadata"] = meta
            return _json(200, t)
        if wants(call.accept, "PartialObjectMetadataList") is not None:
            doc = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [partial(e.obj) for e in entries],
            }
            return _json(200, doc)
        head = json.dumps(
            {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta}, separators=(",", ":")
        )
        # the items are the stored JSON as it is: no decode and re-encode of every object
        body = head[:-1].encode() + b',"items":[' + b",".join(e.raw for e in entries) + b"]}"
        return Reply(200, body)

    def table(self, res: Resource, objs: Objs, call: Call, rv: str) -> dict[str, Any]:
        from fleetnet.kube import tables

        include = call.query.get("includeObject", "Metadata")
        t = tables.table(res.kind, objs, self.clock(), include)
        t.setdefault("metadata", {})["resourceVersion"] = rv
        return t

    # ------------------------------------------------------------------ create
    def create(self, call: Call) -> Reply:
        res, info = call.info.resource, call.info
        if info.subresource is not None:
            return self.admission.create_subresource(self, call)
        obj, warnings = decode_body(call, res)
        self._check_kind(res, obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise st.bad_request("metadata must be an object")
        if res.namespaced:
            ns = info.namespace
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise st.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if not ns:
                raise st.bad_request("the server could not find the requested resource")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            for _ in range(8):
                md["name"] = strategy.generate_name(str(md["generateName"]))
                if self.storage.get(self.key(res, info.namespace, md["name"])) is None:
                    break
        name = str(md.get("name") or "")
        strategy.prepare_create(res, obj, str(uuid.uuid4()), self._now())
        causes = validate(res.kind, obj)
        if causes:
            raise st.invalid(res.kind, res.group, name, causes)
        if res.namespaced:
            self.admission.check_namespace(res, name, info.namespace or "")
        key = self.key(res, info.namespace, name)
        if self.storage.get(key) is not None:
            raise st.already_exists(res.plural, res.group, name)
        self.admission.on_create(res, obj, call.dry_run)
        self._track(res, None, obj, call, "")
        if call.dry_run:
            return _json(201, obj, warnings)
        e = self.storage.put(key, obj)
        return Reply(201, e.raw, headers=warnings)

    def _check_kind(self, res: Resource, obj: dict[str, Any]) -> None:
        kind, av = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != res.kind:
            raise st.bad_request(
                f"the object provided is unrecognized (must be of type {res.kind}): "
                f"couldn't get version/kind; json parse error"
                if not av
                else f'{kind} in version "{str(av).rpartition("/")[2]}" cannot be handled as a {res.kind}: '
                f"the kind in the body does not match the request ({res.kind})"
            )
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version

    # ------------------------------------------------------------------ update
    def update(self, call: Call) -> Reply:
        res, info = call.info.resource, call.info
        assert info.name is not None
        if info.subresource == "scale":
            return self._scale_update(call, None)
        if info.subresource == "finalize":
            return self.admission.finalize(self, call)
        obj, warnings = decode_body(call, res)
        self._check_kind(res, obj)
        md = obj.setdefault("metadata", {})
        if md.get("name") and md["name"] != info.name:
            raise st.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({info.name})"
            )
        md["name"] = info.name
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != info.namespace:
                raise st.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = info.namespace
        old = self.get_entry(res, info.namespace, info.name)
        return self.write_update(res, old, obj, call, info.subresource or "", warnings)

    def write_update(
        self,
        res: Resource,
        old: Entry,
        obj: dict[str, Any],
        call: Call,
        subresource: str,
        warnings: dict[str, str] | None = None,
        *,
        precondition: bool = True,
        track: bool = True,
    ) -> Reply:
        name = str(old.obj["metadata"]["name"])
        md = obj.setdefault("metadata", {})
        rv = md.get("resourceVersion")
        if precondition and rv not in (None, "") and str(rv) != str(old.rv):
            raise st.conflict(res.plural, res.group, name)
        uid = md.get("uid")
        old_uid = old.obj["metadata"].get("uid")
        if uid and old_uid and uid != old_uid:
            raise st.conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}",
            )
        if subresource == "status":
            strategy.prepare_status_update(res, obj, old.obj)
        else:
            strategy.prepare_update(res, obj, old.obj)
            changes = strategy.immutable_changes(res, obj, old.obj)
            if changes:
                from fleetnet.kube.apiserver.validate import forbidden, immutable

                causes = [
                    forbidden("spec", strategy.POD_UPDATE_FORBIDDEN) if f == "spec" else immutable(f, v)
                    for f, v in changes
                ]
                raise st.invalid(res.kind, res.group, name, causes)
            causes = validate(res.kind, obj)
            if causes:
                raise st.invalid(res.kind, res.group, name, causes)
            self.admission.on_update(res, obj, old.obj)
        if track:
            self._track(res, old.obj, obj, call, subresource)
        md = obj["metadata"]
        md["resourceVersion"] = str(old.rv)
        if _same(obj, old.obj):
            return Reply(200, old.raw, headers=warnings or {})
        if call.dry_run:
            return _json(200, obj, warnings)
        key = self.key(res, old.obj["metadata"].get("namespace"), name)
        if md.get("deletionTimestamp") and self.admission.deletable_now(res, obj):
            gone = self.storage.delete(key)
            assert gone is not None
            return Reply(200, gone.raw, headers=warnings or {})
        e = self.storage.put(key, obj)
        return Reply(200, e.raw, headers=warnings or {})

    # ------------------------------------------------------------------ patch
    def patch(self, call: Call) -> Reply:
        from fleetnet.kube.apiserver.patching import patched

        res, info = call.info.resource, call.info
        assert info.name is not None
        ctype = (call.headers.get("Content-Type") or call.headers.get("content-type") or "").split(";")[0].strip()
        if info.subresource == "scale":
            return self._scale_update(call, ctype)
        key = self.key(res, info.namespace, info.name)
        old = self.storage.get(key)
        if ctype == "application/apply-patch+yaml":
            obj, created = patched(self, call, res, old, ctype)
            if created:
                return self._create_applied(call, res, obj)
            assert old is not None
            return self.write_update(res, old, obj, call, info.subresource or "", track=False)
        if old is None:
            raise st.not_found(res.plural, res.group, info.name)
        obj, _ = patched(self, call, res, old, ctype)
        return self.write_update(res, old, obj, call, info.subresource or "")

    def _create_applied(self, call: Call, res: Resource, obj: dict[str, Any]) -> Reply:
        info = call.info
        name = info.name or ""
        strategy.prepare_create(res, obj, str(uuid.uuid4()), self._now())
        causes = validate(res.kind, obj)
        if causes:
            raise st.invalid(res.kind, res.group, name, causes)
        if res.namespaced:
            self.admission.check_namespace(res, name, info.namespace or "")
        self.admission.on_create(res, obj, call.dry_run)
        if call.dry_run:
            return _json(201, obj)
        e = self.storage.put(self.key(res, info.namespace, name), obj)
        return Reply(201, e.raw)

    # ------------------------------------------------------------------ scale
    def _scale_update(self, call: Call, ctype: str | None) -> Reply:
        from fleetnet.kube.apiserver.patching import patch_document

        res, info = call.info.resource, call.info
        assert info.name is not None
        old = self.get_entry(res, info.namespace, info.name)
        current = scale_of(res, old.obj)
        if ctype is None:
            new_scale, _ = decode_body(call, None)
        else:
            new_scale = patch_document(current, call.body, ctype, None)
        spec = new_scale.get("spec") or {}
        replicas = spec.get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            from fleetnet.kube.apiserver.validate import invalid

            raise st.invalid(
                "Scale",
                "autoscaling",
                info.name,
                [invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if rv and str(rv) != str(old.rv):
            raise st.conflict(res.plural, res.group, info.name)
        obj = copy.deepcopy(old.obj)
        obj.setdefault("spec", {})["replicas"] = replicas
        obj["metadata"].pop("resourceVersion", None)
        reply = self.write_update(res, old, obj, call, "scale", precondition=False)
        e = self.storage.get(old.key)
        return _json(reply.status, scale_of(res, e.obj if e is not None else obj))

    # ------------------------------------------------------------------ delete
    def delete(self, call: Call) -> Reply:
        from fleetnet.kube.apiserver.deletion import delete_one, options

        res, info = call.info.resource, call.info
        assert info.name is not None
        opts = options(call)
        e = self.get_entry(res, info.namespace, info.name)
        status, obj = delete_one(self, res, e, opts, call)
        return _json(status, obj)

    def deletecollection(self, call: Call) -> Reply:
        from fleetnet.kube.apiserver.deletion import delete_one, options

        res, info = call.info.resource, call.info
        opts = options(call)
        items = []
        for e in self.select(res, info.namespace, call.query):
            _, obj = delete_one(self, res, e, opts, call)
            items.append(obj)
        return _json(
            200,
            {
                "kind": res.list_kind,
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.storage.rev)},
                "items": items,
            },
        )


def _prefix(res: Resource) -> str:
    full = res.storage_key("x" if res.namespaced else None, "y")
    return full[: -len("x/y")] if res.namespaced else full[: -len("y")]


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """A write that changes nothing but managedFields timestamps is not a write (kube skips it)."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = dict(o)
        md = dict(o.get("metadata") or {})
        mf = md.pop("managedFields", None)
        if mf:
            md["managedFields"] = [{k: v for k, v in f.items() if k != "time"} for f in mf]
        o["metadata"] = md
        return o

    return strip(new) == strip(old)


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def scale_of(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    from fleetnet.kube.selectors import format_label_selector

    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": format_label_selector(spec.get("selector"))},
    }


def paginate(entries: list[Entry], query: Mapping[str, str], rev: int) -> tuple[list[Entry], str, int]:
    """``limit`` and ``continue``: the token names the last key returned (entries are sorted by key)."""
    import base64

    token = query.get("continue")
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            start = str(state["start"])
        except (ValueError, KeyError, TypeError) as e:
            raise st.bad_request(f"continue key is not valid: {e}") from e
        entries = [e for e in entries if e.key > start]
    try:
        limit = int(query.get("limit") or 0)
    except ValueError as e:
        raise st.bad_request(f"invalid limit: {query.get('limit')}") from e
    if limit <= 0 or len(entries) <= limit:
        return entries, "", 0
    page = entries[:limit]
    cont = base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": page[-1].key}).encode())
    return page, cont.decode().rstrip("="), len(entries) - limit


__all__ = ["ApiError", "Call", "Handlers", "Reply"]
