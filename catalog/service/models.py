"""Registered models, their versions, and functions."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from catalog.entities import Column, Page, Securable, TemporaryCredentials
from catalog.errors import FailedPrecondition, InvalidArgument, NotFound
from catalog.privileges import Kind, Privilege
from catalog.service.common import (
    CREDENTIAL_TTL,
    Service,
    decode_token,
    delete_securable,
    display,
    fetch,
    normalize_type,
    page_size,
    parse_for,
    resolve,
    update_securable,
    validate_columns,
    validate_comment,
    validate_properties,
    visible_children,
    webhook_audience,
)
from catalog.store.metastore import now
from catalog.store.registry import RegistryStore

VERSION_STATUSES = ("PENDING_REGISTRATION", "READY", "FAILED_REGISTRATION")
# Facts a model version keeps in its properties (set by the service, never by users).
SIGNATURE = "cairn.signature"
FEATURE_SPEC = "cairn.feature_spec"
TRAINING_SET = "cairn.training_set"
MAX_SPEC_BYTES = 256 * 1024
GATE_TAG_PREFIX = "cairn.gate."
RESERVED_TAG_PREFIX = "cairn."  # the registry's own version tags: gate results, who set a tag
SETTER_TAG = "cairn.setter."
RUN_METRICS = "cairn.run_metrics"


def version_key(model: str, version: int) -> str:
    return f"{model}/{version}"


class ModelService(Service):
    def create_registered_model(self, name: str, comment: str | None = None, properties: dict[str, str] | None = None) -> Securable:
        """Register a model in `catalog.schema`. Needs USE CATALOG, USE SCHEMA, CREATE MODEL."""
        with self._uow("create_registered_model", Kind.MODEL, display(name), comment=comment) as uow:
            fn = parse_for(Kind.MODEL, name)
            schema_id = resolve(uow, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            uow.require(Privilege.CREATE_MODEL, schema_id, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            model = uow.store.insert_securable(
                Kind.MODEL, schema_id, fn.name, fn.key, uow.principal, uow.principal,
                validate_comment(comment), validate_properties(properties),
            )
            location = self.metastore.managed_location(fn.catalog, fn.schema, model.id, kind="models")
            uow.store.update_securable(model.id, uow.principal, storage_location=location)
            RegistryStore(uow.conn).enqueue(model.id, "registered_model.created",
                                            {"name": fn.key, "tags": {}, "description": model.comment}, keep=webhook_audience(uow))
            return fetch(uow, model.id)

    def get_registered_model(self, name: str) -> Securable:
        with self._uow("get_registered_model", Kind.MODEL, display(name), write=False) as uow:
            fn = parse_for(Kind.MODEL, name)
            sid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_visible(sid, Kind.MODEL, fn.key)
            return fetch(uow, sid)

    def list_registered_models(self, catalog: str, schema: str, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        with self._uow("list_registered_models", Kind.SCHEMA, f"{catalog}.{schema}", write=False) as uow:
            fn = parse_for(Kind.SCHEMA, f"{catalog}.{schema}")
            sid = resolve(uow, Kind.SCHEMA, fn.key)
            uow.require_visible(sid, Kind.SCHEMA, fn.key)
            return visible_children(uow, sid, (Kind.MODEL,), decode_token(page_token), page_size(max_results))

    def update_registered_model(self, name: str, comment: str | None = None, properties: dict[str, str] | None = None, new_name: str | None = None) -> Securable:
        with self._uow("update_registered_model", Kind.MODEL, display(name), comment=comment, new_name=new_name) as uow:
            fn = parse_for(Kind.MODEL, name)
            sid = resolve(uow, Kind.MODEL, fn.key)
            return update_securable(uow, sid, Kind.MODEL, fn.key, comment=comment, properties=properties, new_name=new_name)

    def delete_registered_model(self, name: str) -> None:
        """Drop a registered model and all its versions. Needs ownership or MANAGE."""
        with self._uow("delete_registered_model", Kind.MODEL, display(name)) as uow:
            fn = parse_for(Kind.MODEL, name)
            sid = resolve(uow, Kind.MODEL, fn.key)
            delete_securable(uow, sid, Kind.MODEL, fn.key, cascade=True)

    # versions ------------------------------------------------------------------------------
    def create_model_version(
        self, model: str, source: str, run_id: str | None = None, comment: str | None = None,
        signature: dict[str, Any] | str | None = None, feature_spec: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Securable:
        """Add version N+1 in PENDING_REGISTRATION with a storage location to upload to.

        `signature` (MLflow's signature dict), `feature_spec` (the model's feature_spec.json) and
        `metrics` (its run's metrics, which metric gates read) are kept as the version's properties
        `cairn.signature`, `cairn.feature_spec` and `cairn.run_metrics`. With a feature
        spec and a run, lineage is recorded in the same transaction: the training set's tables (the
        saved training set, or the label and feature tables, at their Delta versions) feed the
        version through the MLflow run (a lineage run of that id). Needs ownership or MANAGE on the
        registered model (and usage on its containers), and sight of every table the spec names.
        """
        with self._uow("create_model_version", Kind.MODEL, display(model), source=source, run_id=run_id) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_manage(mid, Kind.MODEL, fn.key, "add versions to")
            if not source or not isinstance(source, str):
                raise InvalidArgument("a model version needs a source (the artifact URI it was logged at)")
            if run_id is not None and (not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id)):
                raise InvalidArgument(f"run_id {run_id!r} must be 1 to 64 letters, digits, '_' or '-'")
            props = self._version_facts(signature, feature_spec, metrics)
            inputs = self._training_inputs(uow, feature_spec) if feature_spec is not None else []
            parent = fetch(uow, mid)
            # The model keeps a counter, so a number is never reused after a version is deleted.
            number = (parent.version or 0) + 1
            uow.store.update_securable(mid, uow.principal, version=number)
            version = uow.store.insert_securable(
                Kind.MODEL_VERSION, mid, f"{number:010d}", version_key(fn.key, number), uow.principal, uow.principal,
                validate_comment(comment), props or None,
                dict(version=number, status="PENDING_REGISTRATION", source=source, run_id=run_id,
                     storage_location=f"{parent.storage_location}/versions/{number}"),
            )
            if inputs and run_id:
                self._record_lineage(uow, run_id, inputs, version_key(fn.key, number))
            RegistryStore(uow.conn).enqueue(mid, "model_version.created", {
                "name": fn.key, "version": str(number), "source": source, "run_id": run_id, "tags": {}, "description": version.comment}, keep=webhook_audience(uow))
            return version

    @staticmethod
    def _version_facts(signature: dict[str, Any] | str | None, feature_spec: dict[str, Any] | None,
                       metrics: dict[str, float] | None) -> dict[str, str]:
        props: dict[str, str] = {}
        if metrics is not None:
            if not isinstance(metrics, dict) or len(metrics) > 1000 or not all(
                    isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in metrics.items()):
                raise InvalidArgument("metrics must map metric names to numbers (the run's metrics)")
            props[RUN_METRICS] = json.dumps({k: float(v) for k, v in metrics.items()}, sort_keys=True)
        if signature is not None:
            text = signature if isinstance(signature, str) else json.dumps(signature, sort_keys=True)
            try:
                parsed = json.loads(text)
            except ValueError:
                raise InvalidArgument("signature must be MLflow's signature as a mapping (or its JSON)") from None
            if not isinstance(parsed, dict) or "inputs" not in parsed:
                raise InvalidArgument("signature must be MLflow's signature: a mapping with 'inputs' (and 'outputs')")
            props[SIGNATURE] = text
        if feature_spec is not None:
            if not isinstance(feature_spec, dict):
                raise InvalidArgument("feature_spec must be a mapping (the model's feature_spec.json)")
            for key, kind in (("feature_tables", list), ("lookups", list), ("input_columns", list), ("feature_columns", list)):
                if not isinstance(feature_spec.get(key, []), kind):
                    raise InvalidArgument(f"feature_spec.{key} must be a list")
            text = json.dumps(feature_spec, sort_keys=True, default=str)
            if len(text) > MAX_SPEC_BYTES:
                raise InvalidArgument(f"feature_spec is {len(text):,} bytes; the limit is {MAX_SPEC_BYTES:,}")
            props[FEATURE_SPEC] = text
            table = feature_spec.get("training_set_table")
            if table:
                props[TRAINING_SET] = str(table)
        return props

    @staticmethod
    def _training_inputs(uow: Any, spec: dict[str, Any]) -> list[tuple[str, int | None]]:
        """The tables a model version learned from, each checked visible to the caller."""
        saved = spec.get("training_set_table")
        if saved:
            wanted: list[tuple[str, int | None]] = [(str(saved), None)]
        else:
            label = spec.get("label_source") or {}
            wanted = ([(str(label["table"]), label.get("version"))] if label.get("table") else []) + \
                [(str(f["table"]), f.get("version")) for f in spec.get("feature_tables", []) if isinstance(f, dict) and f.get("table")]
        # Tables a served model looks its features up in are read as the endpoint's owner: the
        # registrant must see each of them too (nothing names a table it cannot see).
        for lk in spec.get("lookups") or []:
            if not isinstance(lk, dict) or not isinstance(lk.get("table_name"), str):
                raise InvalidArgument("feature_spec.lookups[] must each name a table_name")
            key = parse_for(Kind.TABLE, lk["table_name"]).key
            uow.require_visible(resolve(uow, Kind.TABLE, key), Kind.TABLE, key)
        out = []
        for table, version in wanted:
            key = parse_for(Kind.TABLE, table).key
            sid = resolve(uow, Kind.TABLE, key)
            uow.require_visible(sid, Kind.TABLE, key)
            if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
                raise InvalidArgument(f"feature_spec gives version {version!r} for '{key}'; a Delta version is a non-negative integer")
            out.append((key, version))
        return out

    @staticmethod
    def _record_lineage(uow: Any, run_id: str, inputs: list[tuple[str, int | None]], version: str) -> None:
        """training tables -> model version, the edges carrying the MLflow run (a lineage run of its id)."""
        from lineage.recording import record_edges
        from lineage.store import LineageStore

        store = LineageStore(uow.conn)
        run = store.get_run(run_id)
        if run is None:
            store.upsert_run(run_id, "mlflow", "mlflow_run", "COMPLETE", uow.principal, {"mlflow_run_id": run_id})
        elif run.principal != uow.principal:
            raise uow.refuse(FailedPrecondition(f"run '{run_id}' belongs to another principal; lineage is recorded by the run's own principal"))
        record_edges(store, run_id, inputs, [(f"model:{version}", None)])

    def finalize_model_version(self, model: str, version: int) -> Securable:
        """Mark an uploaded version READY. Needs ownership or MANAGE on the registered model."""
        with self._uow("finalize_model_version", Kind.MODEL_VERSION, f"{display(model)}/{version}") as uow:
            sid, key = self._version(uow, model, version)
            uow.require_manage(sid, Kind.MODEL_VERSION, key, "finalize")
            current = fetch(uow, sid)
            if current.status != "PENDING_REGISTRATION":
                raise FailedPrecondition(f"model version '{key}' is {current.status}, not PENDING_REGISTRATION")
            found = _uploaded_facts(current.storage_location)
            spec = found["feature_spec"] if FEATURE_SPEC not in current.properties else None
            sig = found["signature"] if SIGNATURE not in current.properties else None
            if spec is not None or sig is not None:
                # Uploaded through MLflow's `uc:` registry: the files say what create_model_version was not told.
                props = {**current.properties, **self._version_facts(sig, spec, None)}
                inputs = self._training_inputs(uow, spec) if spec is not None else []
                uow.store.update_securable(sid, uow.principal, properties=props)
                if inputs and current.run_id:
                    self._record_lineage(uow, current.run_id, inputs, key)
            uow.store.update_securable(sid, uow.principal, status="READY")
            return fetch(uow, sid)

    def get_model_version(self, model: str, version: int) -> Securable:
        with self._uow("get_model_version", Kind.MODEL_VERSION, f"{display(model)}/{version}", write=False) as uow:
            sid, key = self._version(uow, model, version)
            uow.require_visible(sid, Kind.MODEL_VERSION, key)
            return fetch(uow, sid)

    def list_model_versions(self, model: str, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        with self._uow("list_model_versions", Kind.MODEL, display(model), write=False) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_visible(mid, Kind.MODEL, fn.key)
            return visible_children(uow, mid, (Kind.MODEL_VERSION,), decode_token(page_token), page_size(max_results), keep=lambda _sid: True)

    def update_model_version(self, model: str, version: int, comment: str) -> Securable:
        with self._uow("update_model_version", Kind.MODEL_VERSION, f"{display(model)}/{version}", comment=comment) as uow:
            sid, key = self._version(uow, model, version)
            uow.require_manage(sid, Kind.MODEL_VERSION, key, "alter")
            uow.store.update_securable(sid, uow.principal, comment=validate_comment(comment))
            return fetch(uow, sid)

    def set_model_version_tag(self, model: str, version: int, key: str, value: str) -> Securable:
        """Set a tag on a version (MLflow's `set_model_version_tag`). Needs APPLY TAG on the model
        version (inherited from the model), ownership or MANAGE. Who set it is kept beside it
        (`cairn.setter.<key>`), for approval gates; keys starting `cairn.` are the registry's own."""
        with self._uow("set_model_version_tag", Kind.MODEL_VERSION, f"{display(model)}/{version}", key=key, value=value) as uow:
            sid, vkey = self._version(uow, model, version)
            uow.name = vkey  # canonical, as the audit log names versions
            uow.require_tagging(sid, Kind.MODEL_VERSION, vkey)
            key, value = self._tag(key, value)
            if key.startswith(RESERVED_TAG_PREFIX):
                raise InvalidArgument(f"tags starting '{RESERVED_TAG_PREFIX}' are the registry's own (gate results, tag setters)")
            uow.store.set_tag(sid, "", key, value)
            uow.store.set_tag(sid, "", SETTER_TAG + key, uow.principal)
            RegistryStore(uow.conn).enqueue(uow.authz.chain(sid)[1].id, "model_version_tag.set",
                                            {"name": vkey.rsplit("/", 1)[0], "version": str(version), "key": key, "value": value}, keep=webhook_audience(uow))
            return fetch(uow, sid)

    def delete_model_version_tag(self, model: str, version: int, key: str) -> Securable:
        """Remove a version's tag. Needs APPLY TAG on the model version, ownership or MANAGE."""
        with self._uow("delete_model_version_tag", Kind.MODEL_VERSION, f"{display(model)}/{version}", key=key) as uow:
            sid, vkey = self._version(uow, model, version)
            uow.require_tagging(sid, Kind.MODEL_VERSION, vkey)
            key, _ = self._tag(key, "")
            if key.startswith(RESERVED_TAG_PREFIX):
                raise InvalidArgument(f"tags starting '{RESERVED_TAG_PREFIX}' are the registry's own (gate results, tag setters)")
            uow.store.unset_tag(sid, "", SETTER_TAG + key)
            if not uow.store.unset_tag(sid, "", key):
                raise NotFound(f"model version '{vkey}' has no tag '{key}'")
            RegistryStore(uow.conn).enqueue(uow.authz.chain(sid)[1].id, "model_version_tag.deleted",
                                            {"name": vkey.rsplit("/", 1)[0], "version": str(version), "key": key}, keep=webhook_audience(uow))
            return fetch(uow, sid)

    def get_model_version_tags(self, model: str, version: int) -> dict[str, str]:
        """A version's tags, key -> value (gate results included)."""
        with self._uow("get_model_version_tags", Kind.MODEL_VERSION, f"{display(model)}/{version}", write=False) as uow:
            sid, vkey = self._version(uow, model, version)
            uow.require_visible(sid, Kind.MODEL_VERSION, vkey)
            return {t.key: t.value for t in uow.store.tags_for([fetch(uow, sid)])[sid] if not t.column}

    @staticmethod
    def _tag(key: Any, value: Any) -> tuple[str, str]:
        if not isinstance(key, str) or not key.strip() or len(key) > 240:
            raise InvalidArgument(f"tag key {key!r} must be a non-empty string of at most 240 characters")
        value = "" if value is None else str(value)
        if len(value) > 1000:
            raise InvalidArgument(f"tag '{key}': the value is longer than 1000 characters")
        return key.strip(), value

    def delete_model_version(self, model: str, version: int) -> None:
        with self._uow("delete_model_version", Kind.MODEL_VERSION, f"{display(model)}/{version}") as uow:
            sid, key = self._version(uow, model, version)
            delete_securable(uow, sid, Kind.MODEL_VERSION, key, cascade=False)

    def generate_temporary_credentials(self, model: str, version: int, operation: str = "READ_MODEL_VERSION") -> TemporaryCredentials:
        """Access to a version's artifacts: reading needs EXECUTE on the model, writing (uploading
        a PENDING_REGISTRATION version) needs ownership or MANAGE. Both need usage on the containers."""
        with self._uow("generate_temporary_model_version_credentials", Kind.MODEL_VERSION, f"{display(model)}/{version}", operation=operation) as uow:
            op = str(operation).upper()
            if op not in ("READ_MODEL_VERSION", "READ_WRITE_MODEL_VERSION"):
                raise InvalidArgument(f"operation must be READ_MODEL_VERSION or READ_WRITE_MODEL_VERSION, not {operation!r}")
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            if op == "READ_MODEL_VERSION":
                uow.require(Privilege.EXECUTE, mid, Kind.MODEL, fn.key)
            else:
                uow.require_manage(mid, Kind.MODEL, fn.key, "upload versions of")
            sid, key = self._version(uow, model, version)
            current = fetch(uow, sid)
            if op == "READ_WRITE_MODEL_VERSION" and current.status != "PENDING_REGISTRATION":
                raise FailedPrecondition(f"model version '{key}' is {current.status}; only a pending version can be written")
            return TemporaryCredentials(current.storage_location or "", op, now() + CREDENTIAL_TTL)

    def set_alias(self, model: str, alias: str, version: int) -> Securable:
        """Point `alias` (champion, challenger, ...) at a version. Needs ownership or MANAGE on the model."""
        with self._uow("set_model_alias", Kind.MODEL, display(model), alias=alias, version=version) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_manage(mid, Kind.MODEL, fn.key, "set aliases of")
            name = self._alias_name(alias)
            self._version(uow, model, version)
            aliases = dict(fetch(uow, mid).aliases)
            aliases[name] = int(version)
            uow.store.update_securable(mid, uow.principal, aliases=aliases)
            RegistryStore(uow.conn).enqueue(mid, "model_version_alias.created", {"name": fn.key, "alias": name, "version": str(version)}, keep=webhook_audience(uow))
            return fetch(uow, mid)

    def delete_alias(self, model: str, alias: str) -> Securable:
        with self._uow("delete_model_alias", Kind.MODEL, display(model), alias=alias) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_manage(mid, Kind.MODEL, fn.key, "delete aliases of")
            aliases = dict(fetch(uow, mid).aliases)
            if aliases.pop(self._alias_name(alias), None) is None:
                raise NotFound(f"registered model '{fn.key}' has no alias '{alias}'")
            uow.store.update_securable(mid, uow.principal, aliases=aliases)
            RegistryStore(uow.conn).enqueue(mid, "model_version_alias.deleted", {"name": fn.key, "alias": self._alias_name(alias)}, keep=webhook_audience(uow))
            return fetch(uow, mid)

    def get_version_by_alias(self, model: str, alias: str) -> Securable:
        """The version an alias points at (`models:/cat.sch.model@champion`)."""
        with self._uow("get_model_version_by_alias", Kind.MODEL, display(model), write=False, alias=alias) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_visible(mid, Kind.MODEL, fn.key)
            version = fetch(uow, mid).aliases.get(self._alias_name(alias))
            if version is None:
                raise NotFound(f"registered model '{fn.key}' has no alias '{alias}'")
            sid, _key = self._version(uow, model, version)
            return fetch(uow, sid)

    @staticmethod
    def _alias_name(alias: str) -> str:
        import re

        if not isinstance(alias, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,254}", alias) or alias.isdigit():
            raise InvalidArgument(f"alias {alias!r} must start with a letter or underscore and hold letters, digits, '_' or '-'")
        return alias.lower()

    def _version(self, uow: Any, model: str, version: int) -> tuple[int, str]:
        fn = parse_for(Kind.MODEL, model)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"a model version is a positive integer, not {version!r}")
        key = version_key(fn.key, version)
        sid = uow.authz.resolve(Kind.MODEL_VERSION, key)
        if sid is None:
            raise NotFound(f"model version '{key}' does not exist")
        return sid, key


class FunctionService(Service):
    def create_function(
        self,
        name: str,
        routine_definition: str,
        data_type: str,
        input_params: Sequence[Column | dict[str, Any]] = (),
        language: str = "SQL",
        comment: str | None = None,
    ) -> Securable:
        """Register a SQL or Python function. Needs USE CATALOG, USE SCHEMA, CREATE FUNCTION."""
        with self._uow("create_function", Kind.FUNCTION, display(name), data_type=data_type, language=language) as uow:
            fn = parse_for(Kind.FUNCTION, name)
            schema_id = resolve(uow, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            uow.require(Privilege.CREATE_FUNCTION, schema_id, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            if not routine_definition or not isinstance(routine_definition, str):
                raise InvalidArgument("a function needs a routine_definition (its body)")
            lang = str(language).upper()
            if lang not in ("SQL", "PYTHON"):
                raise InvalidArgument(f"language must be SQL or PYTHON, not {language!r}")
            params = validate_columns(input_params)
            spec = dict(routine_definition=routine_definition, data_source_format=lang, source=normalize_type(data_type, "RETURNS"))
            # Input parameters are stored like columns, in order.
            return uow.store.insert_securable(
                Kind.FUNCTION, schema_id, fn.name, fn.key, uow.principal, uow.principal,
                validate_comment(comment), None, spec, params,
            )

    def get_function(self, name: str) -> Securable:
        with self._uow("get_function", Kind.FUNCTION, display(name), write=False) as uow:
            fn = parse_for(Kind.FUNCTION, name)
            sid = resolve(uow, Kind.FUNCTION, fn.key)
            uow.require_visible(sid, Kind.FUNCTION, fn.key)
            return fetch(uow, sid)

    def list_functions(self, catalog: str, schema: str, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        with self._uow("list_functions", Kind.SCHEMA, f"{catalog}.{schema}", write=False) as uow:
            fn = parse_for(Kind.SCHEMA, f"{catalog}.{schema}")
            sid = resolve(uow, Kind.SCHEMA, fn.key)
            uow.require_visible(sid, Kind.SCHEMA, fn.key)
            return visible_children(uow, sid, (Kind.FUNCTION,), decode_token(page_token), page_size(max_results))

    def authorize_execute(self, name: str) -> Securable:
        """The function, for an engine about to run it. Needs EXECUTE, USE CATALOG and USE SCHEMA."""
        with self._uow("execute_function", Kind.FUNCTION, display(name), write=False) as uow:
            fn = parse_for(Kind.FUNCTION, name)
            sid = resolve(uow, Kind.FUNCTION, fn.key)
            uow.require(Privilege.EXECUTE, sid, Kind.FUNCTION, fn.key)
            return fetch(uow, sid)

    def delete_function(self, name: str) -> None:
        with self._uow("delete_function", Kind.FUNCTION, display(name)) as uow:
            fn = parse_for(Kind.FUNCTION, name)
            sid = resolve(uow, Kind.FUNCTION, fn.key)
            delete_securable(uow, sid, Kind.FUNCTION, fn.key, cascade=False)


def _uploaded_facts(location: str | None) -> dict[str, Any]:
    """The feature spec (feature_spec.json) and signature (MLmodel) of a version uploaded to local
    storage, or None for each it does not carry. Malformed files are refused by name."""
    from pathlib import Path

    out: dict[str, Any] = {"feature_spec": None, "signature": None}
    if not location or ("://" in location and not location.startswith("file://")):
        return out
    root = Path(location.removeprefix("file://"))
    spec, mlmodel = root / "feature_spec.json", root / "MLmodel"
    try:
        if spec.is_file():
            out["feature_spec"] = json.loads(spec.read_text())
        if mlmodel.is_file():
            import yaml

            meta = yaml.safe_load(mlmodel.read_text()) or {}
            sig = meta.get("signature") if isinstance(meta, dict) else None
            out["signature"] = sig if isinstance(sig, dict) and "inputs" in sig else None
    except (ValueError, OSError) as exc:
        raise InvalidArgument(f"the uploaded model's feature_spec.json or MLmodel cannot be read: {exc}") from None
    except Exception as exc:  # a YAML error
        raise InvalidArgument(f"the uploaded model's MLmodel is not YAML: {type(exc).__name__}") from None
    return out
