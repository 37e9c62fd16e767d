"""The SQL shim: Databricks-style governance statements and governed queries over catalog tables.

Every statement goes through the same governed services as the Python API (so the same checks,
masks, row filters and audit rows apply) and leaves an `execute_sql` audit row of its own. Queries
run on DuckDB over the Delta snapshots' Parquet files: each table a statement names is first read
through `data.plan_scan` (USE CATALOG + USE SCHEMA + SELECT, the reader's row filter and masks),
then bound as a view. Writes compute their rows on DuckDB and commit them through the table
service; their lineage is recorded from the statement.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from catalog import names
from catalog.errors import AlreadyExists, CairnError, InvalidArgument, NotFound
from catalog.paging import every
from catalog.privileges import Kind
from catalog.sql import storage
from catalog.sql.engine import run_sql
from catalog.sql.lexer import Cursor, Statement, split
from catalog.sql.parsing import SqlResult

if TYPE_CHECKING:
    from catalog.services import Services

_KINDS = {"CATALOG": Kind.CATALOG, "SCHEMA": Kind.SCHEMA, "DATABASE": Kind.SCHEMA, "TABLE": Kind.TABLE, "VIEW": Kind.TABLE,
          "FUNCTION": Kind.FUNCTION, "MODEL": Kind.MODEL, "METASTORE": Kind.METASTORE}


class SqlService:
    """Runs SQL for one principal; `USE CATALOG` / `USE SCHEMA` persist for the session."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.current_catalog: str | None = None
        self.current_schema: str | None = None
        self.run_id: str | None = None  # a lineage run the session's writes are recorded under (a job task's)

    def execute(self, script: str) -> list[SqlResult]:
        """Run every statement of `script`; stop at the first failure and say which statement failed."""
        if not isinstance(script, str) or not script.strip():
            raise InvalidArgument("give at least one SQL statement")
        statements = split(script)
        if not statements:
            raise InvalidArgument("the script holds only comments: give at least one SQL statement")
        results = []
        for i, st in enumerate(statements, 1):
            try:
                results.append(self._statement(st))
            except CairnError as exc:
                from catalog.sql import databricks

                exc = databricks.user_facing(exc)  # NOT_FOUND in Databricks' words; no parser internals
                if len(statements) > 1:
                    raise type(exc)(f"statement {i} (line {st.line}) failed: {exc}") from exc
                raise exc
        return results

    def _statement(self, st: Statement) -> SqlResult:
        with self.services.audit.statement(st.text):
            try:
                return self._dispatch(st)
            except RecursionError:
                raise InvalidArgument("the statement is nested too deeply") from None

    # naming ---------------------------------------------------------------------------------
    def full(self, name: str, levels: int) -> str:
        fn = names.parse(name)
        parts = list(fn.parts)
        if len(parts) < levels:
            missing = levels - len(parts)
            defaults = [self.current_catalog, self.current_schema][: levels - 1]
            fill = defaults[:missing] if missing <= len(defaults) else []  # the leading parts are missing
            if len(fill) < missing or any(f is None for f in fill):
                raise InvalidArgument(f"'{name}' is not fully qualified and there is no current {'catalog' if missing == levels - 1 else 'schema'}: "
                                      "qualify it or USE CATALOG / USE SCHEMA first")
            parts = [*fill, *parts]  # type: ignore[list-item]
        if len(parts) != levels:
            raise InvalidArgument(f"'{name}' should have {levels} part(s)")
        return ".".join(parts)

    def _kind_name(self, kind_word: str, name: str | None) -> tuple[Kind, str | None]:
        kind = _KINDS.get(kind_word)
        if kind is None:
            raise InvalidArgument(f"unknown securable kind {kind_word}")
        if kind is Kind.METASTORE:
            return kind, None
        levels = {Kind.CATALOG: 1, Kind.SCHEMA: 2}.get(kind, 3)
        return kind, self.full(name or "", levels)

    # dispatch -------------------------------------------------------------------------------
    def _dispatch(self, st: Statement) -> SqlResult:
        c = Cursor(st.tokens)
        head, after = c.peek(), c.peek(1)
        first = head.text.upper() if head else ""
        second = after.text.upper() if after else ""
        if (first in ("CREATE", "DROP", "ALTER", "DESCRIBE", "DESC") and storage.kind_at(c, 1)) or (first == "SHOW" and storage.kind_at(c, 1, storage.PLURALS)):
            return storage.run(self.services, c, SqlResult)  # external locations and storage credentials
        if first == "CREATE" and (second in ("CATALOG", "SCHEMA", "DATABASE", "GROUP")):
            return self._create(c)
        handlers = {"DROP": self._drop, "USE": self._use, "GRANT": self._grant, "REVOKE": self._grant, "SHOW": self._show,
                    "COMMENT": self._comment, "DESCRIBE": self._describe, "DESC": self._describe, "OPTIMIZE": self._optimize,
                    "VACUUM": self._vacuum, "RESTORE": self._restore}
        from catalog.sql import databricks

        if databricks.handles(c):  # Databricks habits: SHOW GRANTS with inheritance, SET TAG ON, DESCRIBE CATALOG, ...
            return SqlResult(*databricks.run(self, c))
        if first in handlers:
            return handlers[first](c)
        if first == "ALTER":
            return self._alter(c)
        return run_sql(self, st.text)

    def _create(self, c: Cursor) -> SqlResult:
        c.expect("CREATE")
        what = c.word()
        if what == "GROUP":
            group = c.principal()
            c.done()
            self.services.principals.create_group(group)
            return SqlResult(message=f"created group {group}")
        exists_ok = c.accept("IF", "NOT", "EXISTS")
        name = c.name()
        comment = c.string() if c.accept("COMMENT") else None
        c.done()
        try:
            if what == "CATALOG":
                self.services.catalogs.create_catalog(name, comment=comment)
            else:
                self.services.schemas.create_schema(self.full(name, 2), comment=comment)
        except AlreadyExists:
            if not exists_ok:
                raise
            return SqlResult(message=f"{what.lower()} {name} already exists")
        return SqlResult(message=f"created {what.lower()} {name}")

    def _drop(self, c: Cursor) -> SqlResult:
        c.expect("DROP")
        what = c.word()
        if what == "GROUP":
            group = c.principal()
            c.done()
            self.services.principals.delete_principal(group)
            return SqlResult(message=f"dropped group {group}")
        missing_ok = c.accept("IF", "EXISTS")
        name = c.name()
        cascade = c.accept("CASCADE")
        c.accept("RESTRICT")
        c.done()
        kind, full = self._kind_name(what, name)
        if kind not in (Kind.CATALOG, Kind.SCHEMA, Kind.TABLE, Kind.FUNCTION, Kind.MODEL) or full is None:
            raise InvalidArgument(f"DROP {what} is not supported")
        try:
            self.services.drop(kind, full, cascade)
        except NotFound:
            if not missing_ok:
                raise
            return SqlResult(message=f"{what.lower()} {full} does not exist")
        return SqlResult(message=f"dropped {what.lower()} {full}")

    def _use(self, c: Cursor) -> SqlResult:
        c.expect("USE")
        if c.accept("CATALOG"):
            name = c.name()
            c.done()
            cat = self.services.catalogs.get_catalog(name)
            self.current_catalog, self.current_schema = cat.full_name, None
            return SqlResult(message=f"using catalog {cat.full_name}")
        c.accept("SCHEMA") or c.accept("DATABASE")
        name = c.name()
        c.done()
        sch = self.services.schemas.get_schema(self.full(name, 2))
        self.current_catalog, self.current_schema = sch.full_name.split(".")
        return SqlResult(message=f"using schema {sch.full_name}")

    def _securable(self, c: Cursor) -> tuple[Kind, str | None]:
        kind = storage.accept_kind(c)  # EXTERNAL LOCATION name, STORAGE CREDENTIAL name
        if kind is not None:
            return kind, names.parse(c.name(), 1).key
        if c.at("SERVING") and (c.peek(1) is not None and c.peek(1).text.upper() == "ENDPOINT"):  # type: ignore[union-attr]
            c.pos += 2
            return Kind.SERVING_ENDPOINT, names.validate_endpoint_name(c.name())
        what = c.word()
        if what == "REGISTERED":
            c.expect("MODEL")
            what = "MODEL"
        if what == "METASTORE":
            return Kind.METASTORE, None
        return self._kind_name(what, c.name())

    def _grant(self, c: Cursor) -> SqlResult:
        verb = c.word()
        privileges: list[str] = []
        current: list[str] = []
        while not c.at("ON"):
            t = c.peek()
            if t is None:
                c.fail("expected ON")
            c.pos += 1
            if t.text == ",":
                privileges.append(" ".join(current))
                current = []
            else:
                current.append(t.text.upper())
        privileges.append(" ".join(current))
        c.expect("ON")
        kind, name = self._securable(c)
        c.expect("TO" if verb == "GRANT" else "FROM")
        who = c.principal()
        c.done()
        if verb == "GRANT":
            self.services.grants.grant(kind, name, who, privileges)
            return SqlResult(message=f"granted {', '.join(privileges)} on {kind.value.lower().replace('_', ' ')} {name or ''} to {who}".replace("  ", " "))
        self.services.grants.revoke(kind, name, who, privileges)
        return SqlResult(message=f"revoked {', '.join(privileges)} on {kind.value.lower().replace('_', ' ')} {name or ''} from {who}".replace("  ", " "))

    def _alter(self, c: Cursor) -> SqlResult:
        c.expect("ALTER")
        if c.accept("GROUP"):
            group = c.principal()
            add = c.accept("ADD")
            if not add:
                c.expect("REMOVE")
            c.word()  # USER | GROUP | SERVICE_PRINCIPAL
            member = c.principal()
            c.done()
            members = (self.services.principals.add_member if add else self.services.principals.remove_member)(group, member)
            return SqlResult(["member"], [(m,) for m in members])
        kind, name = self._securable(c)
        tag_kind = "table" if kind is Kind.TABLE else kind.value.lower()
        if kind is Kind.MODEL and c.accept("VERSION"):  # ALTER MODEL m VERSION n SET|UNSET TAGS (...): the version's tags
            kind, name, tag_kind = Kind.MODEL_VERSION, f"{name}/{c.number()}", "model_version"
            if not (c.at("SET", "TAGS") or c.at("UNSET", "TAGS")):
                c.fail("expected SET TAGS or UNSET TAGS after ALTER MODEL ... VERSION n")
        if c.accept("OWNER", "TO") or c.accept("SET", "OWNER", "TO"):
            who = c.principal()
            c.done()
            self.services.grants.transfer_ownership(kind, name, who)  # type: ignore[arg-type]
            return SqlResult(message=f"owner of {name} is now {who}")
        if c.accept("SET", "TAGS"):
            tags = c.key_values()
            c.done()
            return _tags(self.services.tags.set_tags(tag_kind, name, tags))  # type: ignore[arg-type]
        if c.accept("UNSET", "TAGS"):
            keys = c.strings_in_parens()
            c.done()
            return _tags(self.services.tags.unset_tags(tag_kind, name, keys))  # type: ignore[arg-type]
        if c.accept("RENAME", "TO"):
            new = names.parse(c.name()).name
            c.done()
            svc = {Kind.CATALOG: self.services.catalogs.update_catalog, Kind.SCHEMA: self.services.schemas.update_schema,
                   Kind.TABLE: self.services.tables.update_table}.get(kind)
            if svc is None or name is None:
                raise InvalidArgument(f"RENAME of a {kind.value.lower()} is not supported")
            svc(name, new_name=new)  # type: ignore[operator]
            return SqlResult(message=f"renamed {name} to {new}")
        if kind is Kind.TABLE and c.accept("SET", "ROW", "FILTER"):
            fn = self.full(c.name(), 3)
            c.expect("ON")
            cols = [x.strip("`") for x in c.names_in_parens()]
            c.done()
            self.services.tables.set_row_filter(name, fn, cols)  # type: ignore[arg-type]
            return SqlResult(message=f"row filter {fn} set on {name}")
        if kind is Kind.TABLE and c.accept("DROP", "ROW", "FILTER"):
            c.done()
            self.services.tables.drop_row_filter(name)  # type: ignore[arg-type]
            return SqlResult(message=f"row filter dropped from {name}")
        if kind is Kind.TABLE and (c.accept("ALTER", "COLUMN") or c.accept("CHANGE", "COLUMN") or c.accept("ALTER")):
            col = c.name().strip("`")
            if c.accept("SET", "TAGS"):
                tags = c.key_values()
                c.done()
                return _tags(self.services.tags.set_tags("table", name, tags, column=col))  # type: ignore[arg-type]
            if c.accept("UNSET", "TAGS"):
                keys = c.strings_in_parens()
                c.done()
                return _tags(self.services.tags.unset_tags("table", name, keys, column=col))  # type: ignore[arg-type]
            if c.accept("SET", "MASK"):
                fn = self.full(c.name(), 3)
                using = [x.strip("`") for x in c.names_in_parens()] if c.accept("USING", "COLUMNS") else []
                c.done()
                self.services.tables.set_column_mask(name, col, fn, using)  # type: ignore[arg-type]
                return SqlResult(message=f"mask {fn} set on {name}.{col}")
            if c.accept("DROP", "MASK"):
                c.done()
                self.services.tables.drop_column_mask(name, col)  # type: ignore[arg-type]
                return SqlResult(message=f"mask dropped from {name}.{col}")
            if c.accept("COMMENT"):
                text = c.string()
                c.done()
                self.services.tables.update_table(name, column_comments={col: text})  # type: ignore[arg-type]
                return SqlResult(message=f"comment set on {name}.{col}")
            c.fail("expected SET TAGS, UNSET TAGS, SET MASK, DROP MASK or COMMENT")
        c.fail("unsupported ALTER")
        raise AssertionError("unreachable")

    def _comment(self, c: Cursor) -> SqlResult:
        c.expect("COMMENT", "ON")
        kind, name = self._securable(c)
        c.expect("IS")
        text = "" if c.accept("NULL") else c.string()
        c.done()
        if kind in (Kind.METASTORE, Kind.FUNCTION, Kind.MODEL_VERSION) or name is None:
            raise InvalidArgument(f"COMMENT ON {kind.value} is not supported")
        self.services.update(kind, name, comment=text)
        return SqlResult(message=f"comment set on {name}")

    def _show(self, c: Cursor) -> SqlResult:
        c.expect("SHOW")
        if c.accept("GRANTS"):
            who = None if c.at("ON") else c.principal()
            c.expect("ON")
            kind, name = self._securable(c)
            c.done()
            grants = self.services.grants.list_grants(kind, name, who)
            return SqlResult(["principal", "action_type", "object_type", "object_key"],
                             [(g.principal, g.privilege.value, g.securable_kind.value, g.securable_name) for g in grants])
        what = c.word()
        scope = c.name() if (c.accept("IN") or c.accept("FROM")) else None
        following = c.peek()
        pattern = c.string() if c.accept("LIKE") else (c.string() if following and following.kind == "string" else None)
        c.done()
        rows: list[tuple[Any, ...]]
        if what == "CATALOGS":
            rows = [(x.name,) for x in every(self.services.catalogs.list_catalogs)]
            cols = ["catalog"]
        elif what in ("SCHEMAS", "DATABASES"):
            cat = scope or self.current_catalog
            if cat is None:
                raise InvalidArgument("SHOW SCHEMAS needs IN <catalog> or a current catalog")
            rows = [(x.name,) for x in every(self.services.schemas.list_schemas, cat)]
            cols = ["databaseName"]
        elif what == "TABLES":
            sch = self.full(scope, 2) if scope else self.full("x", 3).rsplit(".", 1)[0]
            cat, schema = sch.split(".")
            rows = [(schema, x.name, False) for x in every(self.services.tables.list_tables, cat, schema)]
            cols = ["database", "tableName", "isTemporary"]
        elif what == "FUNCTIONS":
            sch = self.full(scope, 2) if scope else self.full("x", 3).rsplit(".", 1)[0]
            cat, schema = sch.split(".")
            rows = [(x.full_name,) for x in every(self.services.functions.list_functions, cat, schema)]
            cols = ["function"]
        else:
            raise InvalidArgument(f"SHOW {what} is not supported")
        if pattern:
            alternatives = [p.strip().lower() for p in pattern.split("|")]
            key = 1 if what == "TABLES" else 0
            rows = [r for r in rows if any(fnmatch.fnmatch(str(r[key]).lower(), p) for p in alternatives)]
        return SqlResult(cols, rows)

    def _describe(self, c: Cursor) -> SqlResult:
        c.word()
        if c.accept("HISTORY"):
            name = self.full(c.name(), 3)
            c.done()
            hist = self.services.data.history(name)
            return SqlResult(["version", "timestamp", "operation", "operationParameters"],
                             [(h.get("version"), h.get("timestamp"), h.get("operation"), str(h.get("operationParameters", ""))) for h in hist])
        c.accept("TABLE")
        extended = c.accept("EXTENDED")
        name = self.full(c.name(), 3)
        c.done()
        t = self.services.tables.get_table(name)
        rows: list[tuple[Any, ...]] = [(col.name, col.type_text, col.comment) for col in t.columns]
        if extended:
            rows += [("", "", ""), ("# Detailed Table Information", "", ""), ("Catalog", t.catalog_name, ""), ("Database", t.schema_name, ""),
                     ("Table", t.name, ""), ("Owner", t.owner, ""), ("Type", t.table_type.value if t.table_type else "", ""),
                     ("Provider", t.data_source_format or "", ""), ("Location", t.storage_location or "", ""), ("Comment", t.comment or "", "")]
            if t.row_filter:
                rows.append(("Row Filter", t.row_filter["function"], ", ".join(t.row_filter["columns"])))
            for col, m in t.column_masks.items():
                rows.append((f"Mask on {col}", m["function"], ""))
        return SqlResult(["col_name", "data_type", "comment"], rows)

    def _optimize(self, c: Cursor) -> SqlResult:
        c.expect("OPTIMIZE")
        name = self.full(c.name(), 3)
        zorder = [x.strip("`").lower() for x in c.names_in_parens()] if c.accept("ZORDER", "BY") else None
        c.done()
        res = self.services.data.optimize(name, zorder_by=zorder)
        return SqlResult(["path", "metrics"], [(name, str(res.metrics))])

    def _vacuum(self, c: Cursor) -> SqlResult:
        c.expect("VACUUM")
        name = self.full(c.name(), 3)
        hours = 168
        if c.accept("RETAIN"):
            hours = c.number()
            c.expect("HOURS")
        dry = c.accept("DRY", "RUN")
        c.done()
        files = self.services.data.vacuum(name, retention_hours=hours, dry_run=dry)
        return SqlResult(["path"], [(f,) for f in files])

    def _restore(self, c: Cursor) -> SqlResult:
        c.expect("RESTORE")
        c.accept("TABLE")
        name = self.full(c.name(), 3)
        c.accept("TO")
        c.expect("VERSION", "AS", "OF")
        version = c.number()
        c.done()
        res = self.services.data.restore(name, version)
        return SqlResult(["table_version"], [(res.version,)], f"restored {name} to version {version}")


def _tags(tags: list[Any]) -> SqlResult:
    return SqlResult(["column", "key", "value"], [(t.column, t.key, t.value) for t in tags])
