//! The SQL stores' schemas, as plain SQL for whatever migration tool a
//! service already runs.
//!
//! The files live in the repository under `migrations/postgres/` and
//! `migrations/sqlite/`, written for the default table name `api_tokens`;
//! a tool that runs SQL files from a directory can take them as they are.
//! For another [`TableName`], take the text from
//! `PostgresStore::migrations` or `SqliteStore::migrations`, which write
//! every name the files derive from `api_tokens` after yours, quoted.
//! A bulk load may disable the trigger that keeps the scope counts and
//! fill `<table>_scope_counts` with one `GROUP BY` afterwards. It may also
//! disable the change feed's (`<table>_noted`, which writes a change row
//! and a notification per token): running replicas then do not see the
//! loaded tokens until they restart (a token they do not know is refused,
//! never served).

use super::table::TableName;

/// One step of a SQL store's schema: run them in `version` order, each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Its place in the order, from 1.
    pub version: u32,
    /// What it does, as its file is named (`create_api_tokens`).
    pub name: &'static str,
    /// The SQL, for the table name it was rendered for.
    pub sql: String,
}

/// A store's migration files: version, name, text for `api_tokens`.
pub(super) type Files = &'static [(u32, &'static str, &'static str)];

#[cfg(feature = "postgres")]
pub(super) const POSTGRES: Files = &[
    (
        1,
        "create_api_tokens",
        include_str!("../../migrations/postgres/0001_create_api_tokens.sql"),
    ),
    (
        2,
        "change_feed",
        include_str!("../../migrations/postgres/0002_change_feed.sql"),
    ),
    (
        3,
        "wider_lists_and_offboarding",
        include_str!("../../migrations/postgres/0003_wider_lists_and_offboarding.sql"),
    ),
    (
        4,
        "fine_grained_tokens",
        include_str!("../../migrations/postgres/0004_fine_grained_tokens.sql"),
    ),
    (
        5,
        "expiry_notices",
        include_str!("../../migrations/postgres/0005_expiry_notices.sql"),
    ),
];

#[cfg(feature = "sqlite")]
pub(super) const SQLITE: Files = &[
    (
        1,
        "create_api_tokens",
        include_str!("../../migrations/sqlite/0001_create_api_tokens.sql"),
    ),
    (
        2,
        "change_feed",
        include_str!("../../migrations/sqlite/0002_change_feed.sql"),
    ),
    (
        3,
        "wider_lists_and_offboarding",
        include_str!("../../migrations/sqlite/0003_wider_lists_and_offboarding.sql"),
    ),
    (
        4,
        "fine_grained_tokens",
        include_str!("../../migrations/sqlite/0004_fine_grained_tokens.sql"),
    ),
    (
        5,
        "expiry_notices",
        include_str!("../../migrations/sqlite/0005_expiry_notices.sql"),
    ),
];

/// The name the files are written for.
const DEFAULT: &str = "api_tokens";

/// The names the files give objects of a schema (tables, a function),
/// written qualified; every other name starting with [`DEFAULT`] is an
/// index or a trigger, which lives with its table, written unqualified.
const QUALIFIED_SUFFIXES: [&str; 8] = [
    "",
    "_scope_revocations",
    "_scope_counts",
    "_count_live",
    "_changes",
    "_changes_pruned",
    "_changed",
    "_reload_replicas",
];

/// `files` rendered for `table`.
pub(super) fn render(files: Files, table: &TableName) -> Vec<Migration> {
    files
        .iter()
        .map(|&(version, name, sql)| Migration {
            version,
            name,
            sql: rename(sql, table),
        })
        .collect()
}

/// `sql` with each name that starts with `api_tokens` written for `table`:
/// `api_tokens` itself and the tables named after it quoted and qualified,
/// indexes quoted. The files mention the name nowhere else.
fn rename(sql: &str, table: &TableName) -> String {
    let mut renamed = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(start) = rest.find(DEFAULT) {
        let after = &rest[start + DEFAULT.len()..];
        let suffix_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let suffix = &after[..suffix_len];
        renamed.push_str(&rest[..start]);
        if QUALIFIED_SUFFIXES.contains(&suffix) {
            renamed.push_str(&table.quoted(suffix));
        } else {
            renamed.push_str(&table.quoted_unqualified(suffix));
        }
        rest = &after[suffix_len..];
    }
    renamed.push_str(rest);
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_written_for_the_table_and_nothing_else_changes() {
        let sql = "CREATE TABLE api_tokens (id TEXT);\n\
                   CREATE INDEX api_tokens_by_scope ON api_tokens (id);\n\
                   CREATE TABLE api_tokens_scope_revocations (x TEXT); -- api-tokens";
        let table = TableName::new("billing.tokens").unwrap();
        assert_eq!(
            rename(sql, &table),
            "CREATE TABLE \"billing\".\"tokens\" (id TEXT);\n\
             CREATE INDEX \"tokens_by_scope\" ON \"billing\".\"tokens\" (id);\n\
             CREATE TABLE \"billing\".\"tokens_scope_revocations\" (x TEXT); -- api-tokens"
        );
    }
}
