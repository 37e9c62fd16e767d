"""Key/value tags on catalogs, schemas, tables, columns, models and model versions."""

from __future__ import annotations

from typing import Any

from catalog.entities import Tag
from catalog.errors import InvalidArgument
from catalog.privileges import Kind
from catalog.service.common import Service, display, fetch, locate
from catalog.store.registry import RegistryStore

REGISTRY_TAG_PREFIX = "cairn."  # on model versions: gate results and tag setters, written by the model service
TAGGABLE = (Kind.CATALOG, Kind.SCHEMA, Kind.TABLE, Kind.MODEL, Kind.MODEL_VERSION)


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if not isinstance(tags, dict) or not tags:
        raise InvalidArgument("give at least one tag as a mapping of key to value")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 255:
            raise InvalidArgument(f"tag key {key!r} must be a non-empty string of at most 255 characters")
        value = "" if value is None else str(value)
        if len(value) > 1000:
            raise InvalidArgument(f"tag '{key}': the value is longer than 1000 characters")
        out[key.strip()] = value
    return out


class TagService(Service):
    def set_tags(self, kind: Kind | str, name: str, tags: dict[str, str], column: str | None = None) -> list[Tag]:
        """Set tags (replacing values of existing keys). Needs APPLY TAG or ownership.

        With `column`, the tags go on that column of a table. Returns the securable's tags after.
        """
        k = Kind.parse(kind)
        with self._uow("set_tags", k, display(name), tags=tags, column=column) as uow:
            return self._apply(uow, k, name, column, _check_tags(tags), set_them=True)

    def unset_tags(self, kind: Kind | str, name: str, keys: list[str], column: str | None = None) -> list[Tag]:
        """Remove tags by key; a key that is not set is ignored, as in Databricks."""
        k = Kind.parse(kind)
        with self._uow("unset_tags", k, display(name), keys=keys, column=column) as uow:
            if not keys or not all(isinstance(x, str) for x in keys):
                raise InvalidArgument("give at least one tag key to unset")
            return self._apply(uow, k, name, column, {x: "" for x in keys}, set_them=False)

    def _apply(self, uow, kind: Kind, name: str, column: str | None, tags: dict[str, str], set_them: bool) -> list[Tag]:  # type: ignore[no-untyped-def]
        if kind not in TAGGABLE:
            raise InvalidArgument(f"a {kind.value.lower()} cannot carry tags")
        kind, sid, key = locate(uow, kind, name)
        uow.require_tagging(sid, kind, key)
        col = ""
        if column is not None:
            if kind is not Kind.TABLE:
                raise InvalidArgument("column tags apply to tables only")
            col = column.lower()
            if col not in {c.name for c in fetch(uow, sid).columns}:
                raise InvalidArgument(f"table '{key}' has no column '{column}'")
        if kind is Kind.MODEL_VERSION:
            reserved = sorted(k for k in tags if k.startswith(REGISTRY_TAG_PREFIX))
            if reserved:
                raise InvalidArgument(f"tag key(s) {reserved} are the registry's own (promotions, approvals); set version tags with "
                                      "models.set_model_version_tag")
        if kind is Kind.MODEL_VERSION:
            self._version_tags(uow, sid, key, tags, set_them)
            return uow.store.tags_for([fetch(uow, sid)])[sid]
        for k, v in tags.items():
            if set_them:
                uow.store.set_tag(sid, col, k, v)
            else:
                uow.store.unset_tag(sid, col, k)
        return uow.store.tags_for([fetch(uow, sid)])[sid]

    @staticmethod
    def _version_tags(uow, sid: int, key: str, tags: dict[str, str], set_them: bool) -> None:  # type: ignore[no-untyped-def]
        """A model version's tags set or unset here are what the registry's own tag API makes of them:
        who set each is kept beside it (approval gates read it), and `model_version_tag.set` /
        `.deleted` enter the webhook outbox in this transaction (MLflow has no event for a
        registered model's tags, so those send none)."""
        model, _, version = key.rpartition("/")
        registry, model_id = RegistryStore(uow.conn), uow.authz.chain(sid)[1].id
        for k, v in tags.items():
            setter = f"{REGISTRY_TAG_PREFIX}setter.{k}"
            if set_them:
                uow.store.set_tag(sid, "", k, v)
                uow.store.set_tag(sid, "", setter, uow.principal)
                registry.enqueue(model_id, "model_version_tag.set", {"name": model, "version": version, "key": k, "value": v})
            else:
                uow.store.unset_tag(sid, "", setter)
                if uow.store.unset_tag(sid, "", k):  # a key that was not set is ignored, and announces nothing
                    registry.enqueue(model_id, "model_version_tag.deleted", {"name": model, "version": version, "key": k})

    def list_tags_many(self, securables: list[Any]) -> dict[int, list[Tag]]:
        """Tags of many securables (as returned by governed lists), in one query; ones the caller
        may not see are left out. Used by the API's batch loaders."""
        with self._uow("list_tags", None, f"{len(securables)} securables", write=False) as uow:
            uow.allow()
            return uow.store.tags_for([s for s in securables if uow.authz.can_see(uow.principal, s.id)])

    def list_tags(self, kind: Kind | str, name: str) -> list[Tag]:
        """Tags on a securable the caller may see, and on its columns."""
        k = Kind.parse(kind)
        with self._uow("list_tags", k, display(name), write=False) as uow:
            k, sid, key = locate(uow, k, name)
            uow.require_visible(sid, k, key)
            return uow.store.tags_for([fetch(uow, sid)])[sid]

