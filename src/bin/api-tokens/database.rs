//! The database a command works on: read from its URL, opened without
//! changing its schema (except by `migrate`), and checked to hold a schema
//! this program knows before any token is read or written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api_tokens::store::TableName;
use api_tokens::{PostgresStore, SqliteStore, TokenStore};
use clap::ValueEnum;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::failure::{Failure, with_causes};

/// Which SQL a schema is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dialect {
    /// SQLite (`sqlite:<path>`).
    Sqlite,
    /// PostgreSQL (`postgres://…`).
    Postgres,
}

/// A database URL, read: `sqlite:<path>` (or `sqlite://<path>`), or a
/// `postgres://` / `postgresql://` URL.
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// Reads `url`. Never repeats it in an error: it may hold a password.
    pub(crate) fn parse(url: &str) -> Result<Self, Failure> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(Failure::input(
                    "the database URL `sqlite:` names no file: write sqlite:<path>",
                ));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        Err(Failure::input(
            "the database URL must start with sqlite:, postgres:// or postgresql://",
        ))
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whatever of the URL must never be printed: its password, if any.
    fn secret(&self) -> Option<&str> {
        let Database::Postgres(url) = self else {
            return None;
        };
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?']).next()?;
        let userinfo = authority.rsplit_once('@')?.0;
        let password = userinfo.split_once(':')?.1;
        (!password.is_empty()).then_some(password)
    }

    /// `message` with the URL's password masked, should a driver's error
    /// have quoted it.
    fn scrub(&self, message: String) -> String {
        match self.secret() {
            Some(password) => message.replace(password, "***"),
            None => message,
        }
    }
}

/// A store opened for a command, with what is needed to close it cleanly.
pub(crate) enum Opened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Opened {
    pub(crate) fn store(&self) -> Arc<dyn TokenStore> {
        match self {
            Opened::Sqlite(store) => Arc::new(store.clone()),
            Opened::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Closes the pools: SQLite checkpoints its write-ahead log.
    pub(crate) async fn close(&self) {
        match self {
            Opened::Sqlite(store) => store.pool().close().await,
            Opened::Postgres(store) => {
                store.management_pool().close().await;
                store.pool().close().await;
            }
        }
    }
}

/// How far a database's schema is, for the store's table.
struct SchemaState {
    /// Whether the token table exists.
    table: bool,
    /// The last migration recorded in `<table>_migrations`, if that table
    /// exists (a service running its own migration tool has none).
    recorded: Option<i64>,
}

/// The number of migrations this program knows for `dialect`.
pub(crate) fn latest_version(dialect: Dialect, table: &TableName) -> Result<i64, Failure> {
    let migrations = match dialect {
        Dialect::Sqlite => SqliteStore::migrations(table).map_err(Failure::input)?,
        Dialect::Postgres => PostgresStore::migrations(table),
    };
    Ok(migrations.last().map_or(0, |last| i64::from(last.version)))
}

/// Opens `database` for a command on its tokens: no file is created and no
/// schema changed. The database must be reachable and hold the schema this
/// program knows.
///
/// # Errors
///
/// Exit code 2 for a database that does not exist, cannot be reached or
/// read, or whose schema is missing, behind or ahead.
pub(crate) async fn open(database: &Database, table: &TableName) -> Result<Opened, Failure> {
    let opened = connect(database, table, false).await?;
    let state = schema_state(&opened, table)
        .await
        .map_err(|error| unreachable(database, &error))?;
    let latest = latest_version(database.dialect(), table)?;
    if !state.table {
        opened.close().await;
        return Err(Failure::input(format!(
            "the database has no table {table}: run `api-tokens migrate` first"
        )));
    }
    match state.recorded {
        Some(recorded) if recorded < latest => {
            opened.close().await;
            Err(Failure::input(format!(
                "the schema of {table} is at version {recorded}, this program needs \
                 {latest}: run `api-tokens migrate`"
            )))
        }
        Some(recorded) if recorded > latest => {
            opened.close().await;
            Err(Failure::input(format!(
                "the schema of {table} is at version {recorded}, newer than this program \
                 knows ({latest}): use the api-tokens that matches your service"
            )))
        }
        _ => Ok(opened),
    }
}

/// What [`migrate`] did: the version recorded before and after.
pub(crate) struct Migrated {
    pub(crate) before: Option<i64>,
    pub(crate) after: i64,
}

/// Opens `database` (creating a SQLite file if missing) and applies the
/// migrations it lacks for `table`.
///
/// # Errors
///
/// Exit code 2 if the database cannot be reached or created, 3 if a
/// migration fails.
pub(crate) async fn migrate(database: &Database, table: &TableName) -> Result<Migrated, Failure> {
    let opened = connect(database, table, true).await?;
    let before = schema_state(&opened, table)
        .await
        .map_err(|error| unreachable(database, &error))?
        .recorded;
    let migrated = match &opened {
        Opened::Sqlite(store) => store.migrate().await,
        Opened::Postgres(store) => store.migrate().await,
    };
    if let Err(error) = migrated {
        opened.close().await;
        return Err(Failure::store(
            database.scrub(format!("the migration failed: {}", with_causes(&error))),
        ));
    }
    let after = schema_state(&opened, table)
        .await
        .map_err(|error| Failure::store(database.scrub(with_causes(&error))))?
        .recorded
        .unwrap_or_default();
    opened.close().await;
    Ok(Migrated { before, after })
}

/// How long a command waits for the database to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn connect(database: &Database, table: &TableName, create: bool) -> Result<Opened, Failure> {
    match database {
        Database::Sqlite(path) => {
            if !create && !path.exists() {
                return Err(Failure::input(format!(
                    "no database file at {}: check the path, or run `api-tokens migrate` to \
                     create one",
                    path.display()
                )));
            }
            let pool = SqlitePoolOptions::new()
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(sqlite_options(path, create))
                .await
                .map_err(|error| unreachable(database, &error))?;
            let store = SqliteStore::from_pool(pool)
                .with_table(table.clone())
                .map_err(Failure::input)?;
            Ok(Opened::Sqlite(store))
        }
        Database::Postgres(url) => {
            let options: PgConnectOptions = url.parse().map_err(|error: sqlx::Error| {
                Failure::input(database.scrub(format!(
                    "the database URL is not one PostgreSQL takes: {}",
                    with_causes(&error)
                )))
            })?;
            let store = PostgresStore::connect_lazy_with(options).with_table(table.clone());
            Ok(Opened::Postgres(store))
        }
    }
}

/// The settings `SqliteStore::open` uses (a write-ahead log, every commit
/// on disk before it returns, writers waiting for one another), creating
/// the file only for `migrate`.
fn sqlite_options(path: &Path, create: bool) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(CONNECT_TIMEOUT)
}

fn unreachable(database: &Database, error: &sqlx::Error) -> Failure {
    Failure::input(database.scrub(format!("cannot open the database: {}", with_causes(error))))
}

/// Reads a [`SchemaState`] through `$pool`. `$exists` is the dialect's
/// query for whether the table its one parameter names exists; each
/// table is given as (the name `$exists` takes, the name as SQL quotes it).
/// A macro, not a function: the two drivers' pools share no type.
macro_rules! read_schema_state {
    ($pool:expr, $exists:literal, $table:expr, $migrations:expr) => {{
        let exists = |name: String| {
            sqlx::query_scalar::<_, bool>($exists)
                .bind(name)
                .fetch_one($pool)
        };
        let (table_name, _) = $table;
        let (migrations_name, migrations_sql) = $migrations;
        let table = exists(table_name).await?;
        let recorded = if exists(migrations_name).await? {
            let query = format!("SELECT max(version) FROM {migrations_sql}");
            sqlx::query_scalar::<_, Option<i64>>(&query)
                .fetch_one($pool)
                .await?
        } else {
            None
        };
        Ok(SchemaState { table, recorded })
    }};
}

/// Reads how far the schema is. Table names are validated to `a-z`, `0-9`
/// and `_`, so quoting them is all the escaping they need.
async fn schema_state(opened: &Opened, table: &TableName) -> Result<SchemaState, sqlx::Error> {
    let migrations = format!("{}_migrations", table.table());
    let quoted = |name: &str| match table.schema() {
        Some(schema) => format!("\"{schema}\".\"{name}\""),
        None => format!("\"{name}\""),
    };
    match opened {
        // SQLite's catalogue holds names as written; a SQLite table has no
        // schema part.
        Opened::Sqlite(store) => read_schema_state!(
            store.pool(),
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table.table().to_owned(), quoted(table.table())),
            (migrations.clone(), quoted(&migrations))
        ),
        // `to_regclass` reads a name as SQL writes it.
        Opened::Postgres(store) => read_schema_state!(
            store.management_pool(),
            "SELECT to_regclass($1) IS NOT NULL",
            (quoted(table.table()), quoted(table.table())),
            (quoted(&migrations), quoted(&migrations))
        ),
    }
}
