"""An agency's records from its own database, through queries the agency writes.

SQLAlchemy Core runs them, so any database with a SQLAlchemy dialect and driver will do
(PostgreSQL through ``psycopg``, installed with mash-hub; SQL Server, Oracle, MySQL or SQLite
with their own driver). The agency describes its database in a small TOML file::

    [database]
    url_env = "MASH_POLICE_DATABASE_URL"    # or url_file = "/run/secrets/police-db-url"

    [queries.people]                         # one per kind of record: the export file's name
    sql = '''
        SELECT nominal_id, forename, surname, date_of_birth, postcode, location_id
        FROM mash_people
        WHERE date_of_birth IN :dates_of_birth OR location_id IN :household_ids
    '''
    columns = { person_id = "nominal_id", given_name = "forename", family_name = "surname",
                household_id = "location_id" }     # field = column in the result

A query's result must hold every column its kind needs (the agency's ``data/README.md``);
``columns`` maps a field to a result column of another name, and every other result column is
read under its own name (case ignored, as Oracle answers in capitals).

**Read for each request, never all at once.** A database is live: the adapter asks it about
the request's subjects when the request arrives, in one read-only transaction (a consistent
snapshot where the database offers one), then the agency's own code matches and answers
exactly as from its CSV export:

1. the *people* query (the kind whose columns are a person's: names, date of birth, postcode,
   household) with the subjects' details bound, for the candidates; then again with the
   candidates' ids and households bound, for everyone living with them;
2. every other kind's query with those people's ids and households bound.

The kit's matching rule then runs over those rows, so the query only has to return at least
the people the rule could pick (everyone born on a subject's date of birth, or holding one of
their identifiers): narrowing by name in SQL would lose the spelling the rule forgives.

**Parameters are bound, never formatted in.** Each is a list, used as ``IN :name``:

- ``:dates_of_birth`` (dates), ``:postcodes`` (upper case, no spaces), ``:given_names``,
  ``:family_names``, ``:nhs_numbers``, ``:upns``, ``:la_child_ids`` (identifiers without
  spaces): the request's subjects;
- ``:person_ids``, ``:household_ids``: the people found in step 1.

**Read-only.** Every transaction is made read-only where the database can enforce it:
PostgreSQL (``SET TRANSACTION ... READ ONLY``, repeatable read), Oracle (``SET TRANSACTION
READ ONLY``), MySQL and MariaDB (``SET SESSION TRANSACTION READ ONLY``) and SQLite
(``PRAGMA query_only``); a query that tries to write fails. Others (SQL Server) get a warning
at start-up; every database should be reached with a role that may only read the views.

**Checked at start-up.** :meth:`SqlSource.from_file` and :meth:`SqlSource.open` find every
problem at once (no such file, a URL that is not one, a variable not set, an unknown kind or
parameter, a kind with no query, a database that does not answer, a query the database
refuses, a result without a needed column), each one line, so ``mash adapter`` prints them
and exits 1. None names the URL (it holds a password) or a value from the database.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Date, String, bindparam, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from adapters.kit.matching import (
    PERSON_COLUMNS,
    CsvRow,
    ExportError,
    ExportFile,
    PeopleExport,
)
from adapters.kit.sources._base import Records, SourceUnavailable
from schemas.models import Subject

__all__ = ["PARAMETERS", "SqlSource", "kind_of"]

log = structlog.get_logger("mash.adapter.sql")

_SUBJECT_PARAMETERS = (
    "dates_of_birth",
    "postcodes",
    "given_names",
    "family_names",
    "nhs_numbers",
    "upns",
    "la_child_ids",
)
_PEOPLE_PARAMETERS = ("person_ids", "household_ids")
PARAMETERS = (*_SUBJECT_PARAMETERS, *_PEOPLE_PARAMETERS)
"""Every parameter the kit binds; a query naming another is refused at start-up."""

# Statements that make a connection or transaction read-only, by dialect: (on connect, on
# begin). PostgreSQL also gets repeatable read, so the queries of one request see one
# snapshot of the records.
_READ_ONLY: Mapping[str, tuple[str | None, str | None]] = {
    "postgresql": (None, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
    "oracle": (None, "SET TRANSACTION READ ONLY"),
    "mysql": ("SET SESSION TRANSACTION READ ONLY", None),
    "mariadb": ("SET SESSION TRANSACTION READ ONLY", None),
    "sqlite": ("PRAGMA query_only = ON", None),
}


def kind_of(export: ExportFile) -> str:
    """A kind of record's name in the configuration: its export file's, without ``.csv``."""
    return export.name.removesuffix(".csv")


def _is_people(export: ExportFile) -> bool:
    return all(column in export.columns for column in PERSON_COLUMNS)


@dataclass(frozen=True)
class _Query:
    kind: str
    statement: TextClause
    columns: Mapping[str, str]  # result column (lower case) -> field
    parameters: frozenset[str]

    def field(self, column: str) -> str:
        return self.columns.get(column.lower(), column.lower())


@dataclass(frozen=True)
class SqlSource:
    """An agency's database and the queries that read it, from its configuration file."""

    path: Path
    url: URL = field(repr=False)  # holds the password: never printed
    queries: Mapping[str, _Query]
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0

    @classmethod
    def from_file(cls, path: Path, environ: Mapping[str, str] | None = None) -> SqlSource:
        """Read the configuration; :class:`ExportError` lists every problem in it."""
        env = os.environ if environ is None else environ
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExportError([f"{path}: file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError([f"{path}: cannot be read ({type(exc).__name__})"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ExportError([f"{path}: not valid TOML ({exc})"]) from None
        problems: list[str] = []
        unknown = sorted(set(config) - {"database", "queries"})
        if unknown:
            problems.append(f"{path}: unknown section(s) {', '.join(unknown)}")
        database = config.get("database")
        url: URL | None = None
        timeouts = {"connect_timeout": 10.0, "statement_timeout": 30.0}
        if not isinstance(database, dict):
            problems.append(f"{path}: no [database] section (url_env or url_file)")
        else:
            url = _url(path, database, env, problems)
            for name in timeouts:
                value = database.get(name, timeouts[name])
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    problems.append(f"{path}: [database] {name} is not a number of seconds")
                else:
                    timeouts[name] = float(value)
            extra = sorted(set(database) - {"url", "url_env", "url_file", *timeouts})
            if extra:
                problems.append(f"{path}: [database] has unknown key(s) {', '.join(extra)}")
        queries = _queries(path, config.get("queries"), problems)
        if problems:
            raise ExportError(problems)
        assert url is not None
        return cls(path, url, queries, timeouts["connect_timeout"], timeouts["statement_timeout"])

    def open(self, kinds: Sequence[ExportFile]) -> SqlView:
        """Connect, run every query once (with nothing bound, so it returns no one) and check
        each result has its kind's columns: :class:`ExportError` lists every problem."""
        problems = self._check_kinds(kinds)
        if problems:
            raise ExportError(problems)
        engine = self._engine(problems)
        if engine is None:
            raise ExportError(problems)
        view = SqlView(self, engine, {kind_of(k): k for k in kinds})
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            # Nothing else can be checked without the database.
            engine.dispose()
            raise ExportError(
                [f"{self.path}: cannot connect to the database ({_first_line(exc)})"]
            ) from None
        with connection:
            for export in kinds:
                query = self.queries.get(kind_of(export))
                if query is not None:  # else an optional kind the agency does not share
                    problem = view.check(connection, query, export)
                    if problem is not None:
                        problems.append(problem)
        if problems:
            engine.dispose()
            raise ExportError(problems)
        if engine.dialect.name not in _READ_ONLY:
            log.warning(
                "sql_source_not_read_only",
                dialect=engine.dialect.name,
                advice="connect with a login that may only read the agency's views",
            )
        return view

    def _check_kinds(self, kinds: Sequence[ExportFile]) -> list[str]:
        problems = []
        known = {kind_of(k): k for k in kinds}
        for name in sorted(set(self.queries) - set(known)):
            problems.append(
                f"{self.path}: [queries.{name}] is not a kind of record this adapter reads "
                f"(it reads {', '.join(known)})"
            )
        for name, export in known.items():
            query = self.queries.get(name)
            if query is None:
                if not export.optional:
                    problems.append(f"{self.path}: no [queries.{name}] (its sql is required)")
                continue
            if _is_people(export):
                if "household_ids" not in query.parameters or not (
                    query.parameters & set(_SUBJECT_PARAMETERS)
                ):
                    problems.append(
                        f"{self.path}: [queries.{name}] must select people by the subjects' "
                        "details (e.g. date_of_birth IN :dates_of_birth) and by their "
                        "households (OR household_id IN :household_ids), or the adults living "
                        "with a child are never found"
                    )
            elif not query.parameters & set(_PEOPLE_PARAMETERS):
                problems.append(
                    f"{self.path}: [queries.{name}] must select rows by :person_ids or "
                    ":household_ids, the people the request is about"
                )
        return problems

    def _engine(self, problems: list[str]) -> Engine | None:
        connect_args: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql" and self.url.get_driver_name() in (
            "psycopg",
            "psycopg2",
        ):
            # A database that does not answer, or a query that never ends, holds a request
            # (and the Red deadline behind it) for a bounded time only.
            connect_args["connect_timeout"] = max(1, round(self.connect_timeout))
            connect_args["options"] = f"-c statement_timeout={round(self.statement_timeout * 1000)}"
        try:
            engine = create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        except NoSuchModuleError:
            problems.append(
                f"{self.path}: no SQLAlchemy dialect {self.url.drivername!r} is installed"
            )
            return None
        except ImportError as exc:
            problems.append(
                f"{self.path}: the driver for {self.url.drivername!r} is not installed "
                f"({exc.name or exc})"
            )
            return None
        except (SQLAlchemyError, TypeError, ValueError) as exc:
            problems.append(f"{self.path}: the database URL is not usable ({type(exc).__name__})")
            return None
        on_connect, on_begin = _READ_ONLY.get(engine.dialect.name, (None, None))
        if on_connect is not None:
            statement = on_connect

            @event.listens_for(engine, "connect")
            def read_only_session(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute(statement)
                cursor.close()

        if on_begin is not None:
            begin = on_begin

            @event.listens_for(engine, "begin")
            def read_only_transaction(connection: Connection) -> None:
                connection.exec_driver_sql(begin)

        return engine


class SqlView:
    """An :class:`SqlSource` opened and checked for one agency's kinds of record."""

    fixed = False

    def __init__(self, source: SqlSource, engine: Engine, kinds: Mapping[str, ExportFile]):
        self.source = source
        self.engine = engine
        self.kinds = kinds

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def records_for(self, subjects: Sequence[Subject]) -> Iterator[Records]:
        try:
            with self.engine.connect() as connection:
                yield _SqlRecords(self, connection, _subject_parameters(subjects))
        except SQLAlchemyError as exc:
            # The class only: the driver's message may quote a bound name or date of birth.
            orig = getattr(exc, "orig", None)
            error = type(orig).__name__ if orig is not None else type(exc).__name__
            log.error("sql_source_failed", config=str(self.source.path), error=error)
            raise SourceUnavailable(
                f"{self.source.path}: the records could not be read from the database ({error})"
            ) from None

    def check(self, connection: Connection, query: _Query, export: ExportFile) -> str | None:
        """Run ``query`` with every list empty; a problem with it or its result, or None."""
        where = f"{self.source.path}: [queries.{query.kind}]"
        try:
            with connection.begin():
                result = connection.execute(query.statement, _empty_parameters(query))
                names = result.keys()  # a result's columns, not a dict's keys
                fields = {query.field(column) for column in names}
                result.close()
        except DBAPIError as exc:
            # The driver's own words (``relation "x" does not exist``, ``cannot execute
            # DELETE in a read-only transaction``); nothing was bound, so no child's details.
            return f"{where}: the database refused the query ({_first_line(exc)})"
        missing = [column for column in export.columns if column not in fields]
        if missing:
            return (
                f"{where}: the result has no column {', '.join(missing)} (select it, or map "
                f"it under [queries.{query.kind}.columns])"
            )
        return None

    def run(
        self, connection: Connection, kind: str, parameters: Mapping[str, list[Any]]
    ) -> list[CsvRow]:
        query = self.source.queries[kind]
        bound = {name: parameters.get(name, []) for name in query.parameters}
        result = connection.execute(query.statement, bound)
        names = result.keys()
        columns = [query.field(column) for column in names]
        label = f"{self.source.path.name}: query {kind!r}"
        rows = []
        for number, raw in enumerate(result, start=1):
            values = {}
            for column, value in zip(columns, raw, strict=True):
                as_text = _as_text(value)
                if as_text is not None:
                    values[column] = as_text
            rows.append(CsvRow(label, number, values, unit="row"))
        return rows


class _SqlRecords:
    """The records one request is about, read in one read-only transaction."""

    def __init__(
        self, view: SqlView, connection: Connection, subjects: Mapping[str, list[Any]]
    ) -> None:
        self._view = view
        self._connection = connection
        self._parameters: dict[str, list[Any]] = dict(subjects)
        self._people_read = False

    def has(self, name: str) -> bool:
        return name.removesuffix(".csv") in self._view.source.queries

    def people(self, name: str, id_column: str) -> PeopleExport:
        kind = name.removesuffix(".csv")
        empty: dict[str, list[Any]] = {"person_ids": [], "household_ids": []}
        candidates = self._view.run(self._connection, kind, {**self._parameters, **empty})
        rows = []
        if candidates:
            # Again with their households: the adults living with a child are disclosed
            # whether or not the referrer named them.
            around = {
                "person_ids": _unique(row.text(id_column) for row in candidates),
                "household_ids": _unique(row.text("household_id") for row in candidates),
            }
            rows = self._view.run(self._connection, kind, {**self._parameters, **around})
        people = PeopleExport.from_rows(f"query {kind!r}", rows, id_column, partial=True)
        self._parameters["person_ids"] = list(people.records)
        self._parameters["household_ids"] = _unique(p.household_id for p in people.records.values())
        self._people_read = True
        return people

    def rows(self, name: str) -> list[CsvRow]:
        if not self._people_read:
            raise RuntimeError("read the people first: the other queries are about them")
        if not self._parameters["person_ids"]:
            return []  # nobody the request is about: nothing to ask the database
        return self._view.run(self._connection, name.removesuffix(".csv"), self._parameters)


# --- Configuration ----------------------------------------------------------------------------


def _url(
    path: Path, database: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> URL | None:
    given = [key for key in ("url", "url_env", "url_file") if key in database]
    if len(given) != 1:
        problems.append(
            f"{path}: [database] needs exactly one of url_env (a variable holding the URL), "
            "url_file (a file holding it) or url (without a password)"
        )
        return None
    key = given[0]
    value = database[key]
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}: [database] {key} is not a non-empty string")
        return None
    origin: str
    if key == "url_env":
        origin = f"${value}"
        raw = env.get(value)
        if not raw:
            problems.append(f"{path}: the variable {value} (url_env) is not set")
            return None
    elif key == "url_file":
        secret = (path.parent / value).expanduser()
        origin = str(secret)
        try:
            raw = secret.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{path}: url_file {secret} cannot be read ({exc.strerror or exc})")
            return None
    else:
        origin, raw = "url", value
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        # Not the text itself: it may hold a password.
        problems.append(
            f"{path}: the database URL ({origin}) is not a URL SQLAlchemy reads "
            "(dialect+driver://user:password@host/database)"
        )
        return None
    if key == "url" and url.password:
        problems.append(
            f"{path}: [database] url holds a password: put the URL in a variable (url_env) "
            "or a secret file (url_file) instead"
        )
        return None
    return url


def _queries(path: Path, section: Any, problems: list[str]) -> dict[str, _Query]:
    if not isinstance(section, dict) or not section:
        problems.append(f"{path}: no [queries.<kind>] sections")
        return {}
    queries = {}
    for kind, spec in section.items():
        where = f"{path}: [queries.{kind}]"
        if not isinstance(spec, dict):
            problems.append(f"{where} is not a table (sql = ..., columns = {{...}})")
            continue
        extra = sorted(set(spec) - {"sql", "columns"})
        if extra:
            problems.append(f"{where} has unknown key(s) {', '.join(extra)}")
        sql = spec.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            problems.append(f"{where} has no sql")
            continue
        columns = spec.get("columns", {})
        if not isinstance(columns, dict) or not all(
            isinstance(v, str) and v for v in columns.values()
        ):
            problems.append(f'{where} columns must map fields to column names (field = "col")')
            continue
        statement = text(sql)
        names = frozenset(statement.compile().params)
        unknown = sorted(names - set(PARAMETERS))
        if unknown:
            problems.append(
                f"{where} uses :{', :'.join(unknown)}, which the adapter does not bind "
                f"(it binds :{', :'.join(PARAMETERS)})"
            )
            continue
        # Every parameter is a list, expanded into the IN (...) the database's dialect writes.
        statement = statement.bindparams(
            *(
                bindparam(
                    name, expanding=True, type_=Date() if name == "dates_of_birth" else String()
                )
                for name in sorted(names)
            )
        )
        by_column = {str(column).lower(): name for name, column in columns.items()}
        queries[kind] = _Query(kind, statement, by_column, names)
    return queries


# --- Values -----------------------------------------------------------------------------------


def _subject_parameters(subjects: Sequence[Subject]) -> dict[str, list[Any]]:
    def strong(name: str) -> list[Any]:
        return _unique(
            "".join(ch for ch in value if ch.isalnum()).upper()
            for s in subjects
            if (value := getattr(s, name))
        )

    return {
        "dates_of_birth": _unique(s.date_of_birth for s in subjects if s.date_of_birth),
        "postcodes": _unique("".join(s.postcode.split()).upper() for s in subjects if s.postcode),
        "given_names": _unique(s.given_name.strip() for s in subjects if s.given_name),
        "family_names": _unique(s.family_name.strip() for s in subjects if s.family_name),
        "nhs_numbers": strong("nhs_number"),
        "upns": strong("upn"),
        "la_child_ids": strong("la_child_id"),
    }


def _empty_parameters(query: _Query) -> dict[str, list[Any]]:
    return {name: [] for name in query.parameters}


def _unique(values: Iterator[Any] | Any) -> list[Any]:
    return list(dict.fromkeys(values))


def _as_text(value: Any) -> str | None:
    """A database value as the text a CSV cell would hold (an empty one as missing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # Oracle answers a DATE column as a datetime at midnight: a date as far as we care.
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    stripped = str(value).strip()
    return stripped or None


def _first_line(exc: DBAPIError) -> str:
    """The driver's own first line (``relation "x" does not exist``), without the statement
    and parameters SQLAlchemy appends."""
    origin = exc.orig if exc.orig is not None else exc
    lines = str(origin).strip().splitlines()
    return lines[0].strip() if lines else type(origin).__name__
