"""Securable kinds and privileges, with Databricks Unity Catalog semantics. Pure data, no I/O.

A privilege granted on a container applies to every current and future child of the kinds it
makes sense for: `SELECT` on a catalog is `SELECT` on all its tables. `ALL PRIVILEGES` expands to
everything grantable on the securable except `MANAGE` and `EXTERNAL USE SCHEMA`, as in Databricks.

Storage credentials and external locations hang directly off the metastore.

>>> sorted(p.value for p in expand(Privilege.ALL_PRIVILEGES, Kind.TABLE))
['APPLY TAG', 'MODIFY', 'SELECT']
>>> grantable_on(Kind.TABLE, Privilege.CREATE_SCHEMA)
False
"""

from __future__ import annotations

from enum import Enum

from catalog.errors import InvalidArgument


class Kind(str, Enum):
    METASTORE = "METASTORE"
    CATALOG = "CATALOG"
    SCHEMA = "SCHEMA"
    TABLE = "TABLE"
    MODEL = "MODEL"  # a registered model
    MODEL_VERSION = "MODEL_VERSION"
    FUNCTION = "FUNCTION"
    STORAGE_CREDENTIAL = "STORAGE_CREDENTIAL"
    EXTERNAL_LOCATION = "EXTERNAL_LOCATION"
    SERVING_ENDPOINT = "SERVING_ENDPOINT"  # a model serving endpoint (Databricks: a workspace object with ACLs)

    @classmethod
    def parse(cls, text: str) -> Kind:
        if isinstance(text, Kind):
            return text
        key = str(text).strip().upper().replace(" ", "_")
        key = {"REGISTERED_MODEL": "MODEL", "VIEW": "TABLE", "CREDENTIAL": "STORAGE_CREDENTIAL", "ENDPOINT": "SERVING_ENDPOINT"}.get(key, key)
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise InvalidArgument(f"unknown securable kind {text!r}; expected one of {names}") from None


class Privilege(str, Enum):
    USE_CATALOG = "USE CATALOG"
    USE_SCHEMA = "USE SCHEMA"
    BROWSE = "BROWSE"
    SELECT = "SELECT"
    MODIFY = "MODIFY"
    CREATE_CATALOG = "CREATE CATALOG"
    CREATE_SCHEMA = "CREATE SCHEMA"
    CREATE_TABLE = "CREATE TABLE"
    CREATE_MODEL = "CREATE MODEL"
    CREATE_FUNCTION = "CREATE FUNCTION"
    EXECUTE = "EXECUTE"
    APPLY_TAG = "APPLY TAG"
    MANAGE = "MANAGE"
    ALL_PRIVILEGES = "ALL PRIVILEGES"
    # Storage (Unity Catalog): external locations, storage credentials, and vending a table's files.
    CREATE_EXTERNAL_LOCATION = "CREATE EXTERNAL LOCATION"
    CREATE_STORAGE_CREDENTIAL = "CREATE STORAGE CREDENTIAL"
    CREATE_EXTERNAL_TABLE = "CREATE EXTERNAL TABLE"
    CREATE_MANAGED_STORAGE = "CREATE MANAGED STORAGE"
    READ_FILES = "READ FILES"
    WRITE_FILES = "WRITE FILES"
    EXTERNAL_USE_SCHEMA = "EXTERNAL USE SCHEMA"
    # Serving endpoints (Databricks permission levels): query it; manage it (config, grants, delete).
    CAN_QUERY = "CAN QUERY"
    CAN_MANAGE = "CAN MANAGE"

    @classmethod
    def parse(cls, text: str) -> Privilege:
        if isinstance(text, Privilege):
            return text
        key = " ".join(str(text).replace("_", " ").upper().split())
        if key == "ALL":
            key = "ALL PRIVILEGES"
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise InvalidArgument(f"unknown privilege {text!r}; expected one of {names}") from None


P = Privilege

# The leaf kinds that live in a schema, and the containers above each kind.
OBJECT_KINDS = (Kind.TABLE, Kind.MODEL, Kind.FUNCTION)
PARENT_KIND = {
    Kind.CATALOG: Kind.METASTORE,
    Kind.SCHEMA: Kind.CATALOG,
    Kind.TABLE: Kind.SCHEMA,
    Kind.MODEL: Kind.SCHEMA,
    Kind.FUNCTION: Kind.SCHEMA,
    Kind.MODEL_VERSION: Kind.MODEL,
    Kind.STORAGE_CREDENTIAL: Kind.METASTORE,
    Kind.EXTERNAL_LOCATION: Kind.METASTORE,
    Kind.SERVING_ENDPOINT: Kind.METASTORE,
}
# Securables that live directly under the metastore with a one-part name, outside the namespace.
STORAGE_KINDS = (Kind.STORAGE_CREDENTIAL, Kind.EXTERNAL_LOCATION)
# Securables with a one-part name directly under the metastore.
ONE_PART_KINDS = (*STORAGE_KINDS, Kind.SERVING_ENDPOINT)

# What a privilege means on each kind it can hold on (directly or through inheritance).
_HOLDS_ON: dict[Privilege, frozenset[Kind]] = {
    P.CREATE_CATALOG: frozenset({Kind.METASTORE}),
    P.USE_CATALOG: frozenset({Kind.CATALOG}),
    P.BROWSE: frozenset({Kind.CATALOG, Kind.SCHEMA, Kind.TABLE, Kind.MODEL, Kind.FUNCTION}),
    P.USE_SCHEMA: frozenset({Kind.SCHEMA}),
    P.CREATE_SCHEMA: frozenset({Kind.CATALOG}),
    P.CREATE_TABLE: frozenset({Kind.SCHEMA}),
    P.CREATE_MODEL: frozenset({Kind.SCHEMA}),
    P.CREATE_FUNCTION: frozenset({Kind.SCHEMA}),
    P.SELECT: frozenset({Kind.TABLE}),
    P.MODIFY: frozenset({Kind.TABLE}),
    P.EXECUTE: frozenset({Kind.MODEL, Kind.FUNCTION}),
    P.APPLY_TAG: frozenset({Kind.CATALOG, Kind.SCHEMA, Kind.TABLE, Kind.MODEL}),
    P.MANAGE: frozenset({Kind.CATALOG, Kind.SCHEMA, Kind.TABLE, Kind.MODEL, Kind.FUNCTION, Kind.STORAGE_CREDENTIAL, Kind.EXTERNAL_LOCATION}),
    # On a credential it means "may name it in a new external location" (checked on the credential
    # itself, not inherited from the metastore grant of the same name).
    P.CREATE_EXTERNAL_LOCATION: frozenset({Kind.METASTORE, Kind.STORAGE_CREDENTIAL}),
    P.CREATE_STORAGE_CREDENTIAL: frozenset({Kind.METASTORE}),
    P.CREATE_EXTERNAL_TABLE: frozenset({Kind.EXTERNAL_LOCATION}),
    P.CREATE_MANAGED_STORAGE: frozenset({Kind.EXTERNAL_LOCATION}),
    P.READ_FILES: frozenset({Kind.EXTERNAL_LOCATION}),
    P.WRITE_FILES: frozenset({Kind.EXTERNAL_LOCATION}),
    P.EXTERNAL_USE_SCHEMA: frozenset({Kind.SCHEMA}),
    P.CAN_QUERY: frozenset({Kind.SERVING_ENDPOINT}),
    P.CAN_MANAGE: frozenset({Kind.SERVING_ENDPOINT}),
}

# Never part of ALL PRIVILEGES (as in Databricks): handing out a table's raw files bypasses row
# filters and masks, so it must be granted by name.
_NOT_IN_ALL = frozenset({P.MANAGE, P.EXTERNAL_USE_SCHEMA})

_ANCESTORS = {
    Kind.METASTORE: (),
    Kind.CATALOG: (Kind.METASTORE,),
    Kind.SCHEMA: (Kind.CATALOG, Kind.METASTORE),
    Kind.TABLE: (Kind.SCHEMA, Kind.CATALOG, Kind.METASTORE),
    Kind.MODEL: (Kind.SCHEMA, Kind.CATALOG, Kind.METASTORE),
    Kind.FUNCTION: (Kind.SCHEMA, Kind.CATALOG, Kind.METASTORE),
    Kind.MODEL_VERSION: (Kind.MODEL, Kind.SCHEMA, Kind.CATALOG, Kind.METASTORE),
    Kind.STORAGE_CREDENTIAL: (Kind.METASTORE,),
    Kind.EXTERNAL_LOCATION: (Kind.METASTORE,),
    Kind.SERVING_ENDPOINT: (Kind.METASTORE,),
}


def _grantable(kind: Kind) -> frozenset[Privilege]:
    """A privilege is grantable on a kind when it holds on that kind or on a kind below it.

    BROWSE is grantable on catalogs only, as in Databricks; model versions take the grants of
    their registered model.
    """
    if kind is Kind.MODEL_VERSION:
        return frozenset()
    below = {k for k, ancestors in _ANCESTORS.items() if kind in ancestors or k is kind}
    out = {p for p, kinds in _HOLDS_ON.items() if kinds & below}
    if kind is not Kind.CATALOG:
        out.discard(P.BROWSE)
    if kind is Kind.METASTORE:
        out = {P.CREATE_CATALOG, P.CREATE_EXTERNAL_LOCATION, P.CREATE_STORAGE_CREDENTIAL}
    return frozenset(out | {P.ALL_PRIVILEGES})


GRANTABLE: dict[Kind, frozenset[Privilege]] = {k: _grantable(k) for k in Kind}


def grantable_on(kind: Kind, privilege: Privilege) -> bool:
    return privilege in GRANTABLE[kind]


def ancestors_of(kind: Kind) -> tuple[Kind, ...]:
    return _ANCESTORS[kind]


def holds_on(privilege: Privilege, kind: Kind) -> bool:
    """Whether the privilege means something on a securable of this kind."""
    return kind in _HOLDS_ON.get(privilege, frozenset())


def expand(privilege: Privilege, kind: Kind) -> frozenset[Privilege]:
    """The concrete privileges a grant of `privilege` on a securable of `kind` confers."""
    if privilege is P.ALL_PRIVILEGES:
        return frozenset(GRANTABLE[kind] - {P.ALL_PRIVILEGES} - _NOT_IN_ALL)
    return frozenset({privilege})


def check_grantable(kind: Kind, privilege: Privilege) -> None:
    if not grantable_on(kind, privilege):
        allowed = ", ".join(sorted(p.value for p in GRANTABLE[kind])) or "none"
        raise InvalidArgument(
            f"privilege {privilege.value} cannot be granted on a {kind.value.lower().replace('_', ' ')}; "
            f"grantable there: {allowed}"
        )


def effective_on(kind: Kind) -> frozenset[Privilege]:
    """The privileges that can be effective on a securable of this kind (for 'why' queries)."""
    return frozenset(p for p, kinds in _HOLDS_ON.items() if kind in kinds)
