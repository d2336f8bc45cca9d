"""The statements every unit of work runs, on the DBAPI cursor.

A Core statement executed through SQLAlchemy costs ~10 µs of Python around the database's
own work (its cache key and lookup, an execution context, parameter and result
processing; ``python -m bench.micro``: an insert 19 → 8 µs, a select by key 17 → 6 µs),
and the services run many small statements: SQLAlchemy's work around them was ~20% of
registry's, review's and security's CPU in the approval run, against ~10% for SQLite
running them (bench/README.md, step 12).
:class:`Prepared` keeps what SQLAlchemy would do once: it compiles its statement once per
dialect and set of parameter names, with the types' bind and result processors, and then
runs it on the connection's DBAPI cursor — inside the same transaction, since it is the
same DBAPI connection.

What it refuses, at the first execution, so that no statement silently behaves
differently: a statement whose compiled form needs column defaults computed in Python
(``Column(default=...)``) or RETURNING. Errors are SQLAlchemy's own exception types
(``sqlalchemy.exc.IntegrityError`` and the rest), built the way SQLAlchemy builds them.
"""
import collections

from sqlalchemy import exc


class _Row(tuple):
    """A result row: by position, by attribute (``row.code``) and as ``row._mapping``."""

    __slots__ = ()
    _fields = ()
    _index = {}

    def __getattr__(self, name):
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self):
        return dict(zip(self._fields, self))


def _row_class(names):
    return type("Row", (_Row,), {"__slots__": (), "_fields": tuple(names),
                                 "_index": {name: i for i, name in enumerate(names)}})


_Plan = collections.namedtuple("_Plan", "sql positional names defaults processors row result_processors")
_REQUIRED = object()


class Prepared:
    """A Core statement, compiled once per dialect and parameter names, run on the cursor.

    ``run(conn, params)`` executes it (a list of dicts: executemany); ``first``,
    ``scalar`` and ``all`` fetch rows for a SELECT. A statement keeps one plan per dialect
    and set of parameter names, as SQLAlchemy's compiled cache would."""

    def __init__(self, statement):
        self.statement = statement
        self._plans = {}

    def _plan(self, dialect, keys):
        plan_key = (dialect.name, keys)
        plan = self._plans.get(plan_key)
        if plan is not None:
            return plan
        # for_executemany: no implicit RETURNING of the primary key (PostgreSQL), which a
        # unit of work never reads back
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None) or \
                getattr(compiled, "effective_returning", None):
            raise ValueError(f"runtime.sql.Prepared cannot run {compiled.string!r}: it needs Python-side "
                             "column defaults or RETURNING; execute it through SQLAlchemy")
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        if getattr(compiled, "escaped_bind_names", None) or any(
                compiled.binds[name].expanding or compiled.binds[name].literal_execute for name in names):
            raise ValueError(f"runtime.sql.Prepared cannot run {compiled.string!r}: expanding, literal or "
                             "escaped parameters; execute it through SQLAlchemy")
        processors, defaults = {}, {}
        for name in names:
            bind = compiled.binds[name]
            # a value the statement carries (``.values(status="withdrawn")``) unless the call gives one
            defaults[name] = _REQUIRED if bind.required else bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        row, result_processors = None, None
        if getattr(self.statement, "is_select", False):
            columns = list(self.statement.selected_columns)
            row = _row_class([column.key for column in columns])
            result_processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                                 for column in columns]
            if not any(result_processors):
                result_processors = None
        plan = _Plan(compiled.string, compiled.positional, names, defaults, processors, row, result_processors)
        self._plans[plan_key] = plan
        return plan

    def _execute(self, conn, params):
        if not conn.in_transaction():
            conn.begin()  # as SQLAlchemy's autobegin: a read's statements share one snapshot
        dialect = conn.dialect
        many = isinstance(params, list)
        first = params[0] if many else params
        plan = self._plan(dialect, tuple(sorted(first)))
        binds = [self._bind(plan, p) for p in params] if many else self._bind(plan, params)
        cursor = conn.connection.driver_connection.cursor()
        try:
            if many:
                cursor.executemany(plan.sql, binds)
            else:
                cursor.execute(plan.sql, binds)
        except dialect.loaded_dbapi.Error as error:
            # as SQLAlchemy does: a lost connection is invalidated (not pooled again), and the
            # error is SQLAlchemy's wrapper (IntegrityError, OperationalError, …) with .orig
            lost = dialect.is_disconnect(error, conn.connection.dbapi_connection, cursor)
            cursor.close()
            if lost:
                conn.invalidate(error)
            raise exc.DBAPIError.instance(plan.sql, binds, error, dialect.loaded_dbapi.Error,
                                          connection_invalidated=lost, dialect=dialect) from error
        return plan, cursor

    def _bind(self, plan, params):
        """The DBAPI's parameters for one call: given or carried values, through the types'
        bind processors, as a tuple (positional paramstyle) or a dict."""
        values = {}
        for name in plan.names:
            value = params.get(name, _REQUIRED)
            if value is _REQUIRED:
                value = plan.defaults[name]
                if value is _REQUIRED:
                    raise exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
            processor = plan.processors.get(name)
            values[name] = value if processor is None else processor(value)
        return tuple(values[name] for name in plan.names) if plan.positional else values

    def _rows(self, plan, raw):
        if plan.result_processors is None:
            return [plan.row(r) for r in raw]
        processors = plan.result_processors
        return [plan.row(p(v) if p is not None else v for p, v in zip(processors, r)) for r in raw]

    # ---- the calls -------------------------------------------------------------------
    def run(self, conn, params):
        _, cursor = self._execute(conn, params)
        cursor.close()

    def all(self, conn, params):
        plan, cursor = self._execute(conn, params)
        try:
            return self._rows(plan, cursor.fetchall())
        finally:
            cursor.close()

    def first(self, conn, params):
        plan, cursor = self._execute(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return None if raw is None else self._rows(plan, [raw])[0]

    def scalar(self, conn, params):
        row = self.first(conn, params)
        return None if row is None else row[0]
