//! `schema` (the migration SQL) and `migrate` (applying it).

use api_tokens::{PostgresStore, SqliteStore};
use clap::Args;
use serde_json::json;

use crate::database::{self, Dialect};
use crate::failure::Failure;
use crate::output::Report;
use crate::session::Global;

#[derive(Args, Debug)]
pub(crate) struct SchemaArgs {
    /// The SQL dialect [default: the --database URL's].
    #[arg(long, value_enum)]
    dialect: Option<Dialect>,
}

/// Prints every migration, in order, for the table: for a service that
/// runs its own migration tool.
pub(crate) fn schema(args: &SchemaArgs, global: &Global) -> Result<Report, Failure> {
    let dialect = match (args.dialect, &global.database) {
        (Some(dialect), _) => dialect,
        (None, Some(_)) => global.database()?.dialect(),
        (None, None) => {
            return Err(Failure::input(
                "say which SQL: --dialect sqlite|postgres (or give --database)",
            ));
        }
    };
    let table = global.table()?;
    let migrations = match dialect {
        Dialect::Sqlite => SqliteStore::migrations(&table)
            .map_err(|error| Failure::input(format!("--table: {error}")))?,
        Dialect::Postgres => PostgresStore::migrations(&table),
    };
    let mut text = String::new();
    for migration in &migrations {
        text.push_str(&format!(
            "-- {:04} {}\n{}\n",
            migration.version,
            migration.name,
            migration.sql.trim_end()
        ));
    }
    let json = migrations
        .iter()
        .map(|migration| {
            json!({
                "version": migration.version,
                "name": migration.name,
                "sql": migration.sql,
            })
        })
        .collect();
    Ok(Report::new(text, serde_json::Value::Array(json)))
}

/// Applies the migrations the database lacks. The database records each
/// one, with its time, in `<table>_migrations`: no token changes, so no
/// audit event and no operator needed.
pub(crate) async fn migrate(global: &Global) -> Result<Report, Failure> {
    let database = global.database()?;
    let table = global.table()?;
    let migrated = database::migrate(&database, &table).await?;
    let text = match migrated.before {
        Some(before) if before == migrated.after => {
            format!("{table} is up to date: schema version {before}\n")
        }
        before => format!(
            "{table} migrated from schema version {} to {}\n",
            before.unwrap_or(0),
            migrated.after
        ),
    };
    Ok(Report::new(
        text,
        json!({
            "table": table.to_string(),
            "from_version": migrated.before.unwrap_or(0),
            "to_version": migrated.after,
        }),
    ))
}
