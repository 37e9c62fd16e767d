"""Catalogs and schemas: the first two levels of the namespace."""

from __future__ import annotations

from catalog.entities import Page, Securable
from catalog.privileges import Kind, Privilege
from catalog.service.common import (
    Service,
    decode_token,
    delete_securable,
    display,
    fetch,
    page_size,
    parse_for,
    resolve,
    update_securable,
    validate_comment,
    validate_properties,
    visible_children,
)


class CatalogService(Service):
    def create_catalog(self, name: str, comment: str | None = None, properties: dict[str, str] | None = None) -> Securable:
        """Create a catalog owned by the caller. Needs CREATE CATALOG on the metastore.

        Raises InvalidArgument (bad name), PermissionDenied, AlreadyExists.
        """
        with self._uow("create_catalog", Kind.CATALOG, display(name), comment=comment, properties=properties) as uow:
            fn = parse_for(Kind.CATALOG, name)
            root = uow.store.metastore_id()
            uow.require(Privilege.CREATE_CATALOG, root, Kind.METASTORE, "metastore", usage=False)
            return uow.store.insert_securable(
                Kind.CATALOG, root, fn.name, fn.key, uow.principal, uow.principal,
                validate_comment(comment), validate_properties(properties),
            )

    def get_catalog(self, name: str) -> Securable:
        """A catalog the caller may see. Raises NotFound otherwise."""
        with self._uow("get_catalog", Kind.CATALOG, display(name), write=False) as uow:
            fn = parse_for(Kind.CATALOG, name)
            sid = resolve(uow, Kind.CATALOG, fn.key)
            uow.require_visible(sid, Kind.CATALOG, fn.key)
            return fetch(uow, sid)

    def list_catalogs(self, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        """The catalogs the caller may see, by name, one page at a time."""
        with self._uow("list_catalogs", Kind.METASTORE, None, write=False, page_token=page_token) as uow:
            uow.allow()
            return visible_children(uow, uow.store.metastore_id(), (Kind.CATALOG,), decode_token(page_token), page_size(max_results))

    def update_catalog(
        self, name: str, comment: str | None = None, properties: dict[str, str] | None = None, new_name: str | None = None
    ) -> Securable:
        """Alter a catalog's comment, properties or name. Needs ownership or MANAGE."""
        with self._uow("update_catalog", Kind.CATALOG, display(name), comment=comment, properties=properties, new_name=new_name) as uow:
            fn = parse_for(Kind.CATALOG, name)
            sid = resolve(uow, Kind.CATALOG, fn.key)
            return update_securable(uow, sid, Kind.CATALOG, fn.key, comment=comment, properties=properties, new_name=new_name)

    def delete_catalog(self, name: str, cascade: bool = False) -> None:
        """Drop a catalog; a non-empty one needs cascade. Its grants and tags go with it."""
        with self._uow("delete_catalog", Kind.CATALOG, display(name), cascade=cascade) as uow:
            fn = parse_for(Kind.CATALOG, name)
            sid = resolve(uow, Kind.CATALOG, fn.key)
            delete_securable(uow, sid, Kind.CATALOG, fn.key, cascade)


class SchemaService(Service):
    def create_schema(
        self, name: str, comment: str | None = None, properties: dict[str, str] | None = None
    ) -> Securable:
        """Create `catalog.schema`. Needs USE CATALOG and CREATE SCHEMA on the catalog."""
        with self._uow("create_schema", Kind.SCHEMA, display(name), comment=comment, properties=properties) as uow:
            fn = parse_for(Kind.SCHEMA, name)
            cid = resolve(uow, Kind.CATALOG, fn.catalog)
            uow.require(Privilege.CREATE_SCHEMA, cid, Kind.CATALOG, fn.catalog)
            return uow.store.insert_securable(
                Kind.SCHEMA, cid, fn.name, fn.key, uow.principal, uow.principal,
                validate_comment(comment), validate_properties(properties),
            )

    def get_schema(self, name: str) -> Securable:
        with self._uow("get_schema", Kind.SCHEMA, display(name), write=False) as uow:
            fn = parse_for(Kind.SCHEMA, name)
            sid = resolve(uow, Kind.SCHEMA, fn.key)
            uow.require_visible(sid, Kind.SCHEMA, fn.key)
            return fetch(uow, sid)

    def list_schemas(self, catalog: str, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        """The schemas of a catalog the caller may see."""
        with self._uow("list_schemas", Kind.CATALOG, display(catalog), write=False, page_token=page_token) as uow:
            fn = parse_for(Kind.CATALOG, catalog)
            cid = resolve(uow, Kind.CATALOG, fn.key)
            uow.require_visible(cid, Kind.CATALOG, fn.key)
            return visible_children(uow, cid, (Kind.SCHEMA,), decode_token(page_token), page_size(max_results))

    def update_schema(
        self, name: str, comment: str | None = None, properties: dict[str, str] | None = None, new_name: str | None = None
    ) -> Securable:
        with self._uow("update_schema", Kind.SCHEMA, display(name), comment=comment, properties=properties, new_name=new_name) as uow:
            fn = parse_for(Kind.SCHEMA, name)
            sid = resolve(uow, Kind.SCHEMA, fn.key)
            return update_securable(uow, sid, Kind.SCHEMA, fn.key, comment=comment, properties=properties, new_name=new_name)

    def delete_schema(self, name: str, cascade: bool = False) -> None:
        with self._uow("delete_schema", Kind.SCHEMA, display(name), cascade=cascade) as uow:
            fn = parse_for(Kind.SCHEMA, name)
            sid = resolve(uow, Kind.SCHEMA, fn.key)
            delete_securable(uow, sid, Kind.SCHEMA, fn.key, cascade)
