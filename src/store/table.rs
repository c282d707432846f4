//! The name of the table a SQL store keeps its tokens in.

use std::fmt;
use std::str::FromStr;

use crate::error::TableNameError;

/// The longest table part of a name: the store names a second table and
/// indexes after it (`<table>_scope_revocations_by_scope` is the longest),
/// and PostgreSQL keeps only 63 bytes of a name.
pub const MAX_TABLE_NAME_LEN: usize = 32;

/// The longest schema part of a name (PostgreSQL's limit).
const MAX_SCHEMA_NAME_LEN: usize = 63;

/// Where a SQL store keeps its tokens: `api_tokens` by default, or a name
/// of your choosing, schema-qualified on PostgreSQL if you like
/// (`billing.api_tokens`; SQLite takes none).
///
/// Identifiers cannot be query parameters, so this name is written into the
/// store's SQL; it is therefore validated once, here: a table part of 1 to
/// [`MAX_TABLE_NAME_LEN`] bytes and an optional schema part, each of
/// lowercase `a-z`, `0-9` and `_`, starting with a letter or `_`. The SQL
/// always writes it quoted (`"billing"."api_tokens"`), so no part can be
/// read as anything but a name. Lowercase only, so the quoted name is the
/// one PostgreSQL folds an unquoted name to: `psql` finds it as typed.
///
/// The store names a few more objects after it, in the same schema: the
/// table `<table>_scope_revocations`, the migration record
/// `<table>_migrations`, and indexes `<table>_by_…`.
///
/// ```
/// use api_tokens::store::TableName;
///
/// let name: TableName = "billing.api_tokens".parse()?;
/// assert_eq!((name.schema(), name.table()), (Some("billing"), "api_tokens"));
/// assert_eq!(name.to_string(), "billing.api_tokens");
/// assert!(TableName::new("tokens; DROP TABLE users").is_err());
/// assert_eq!(TableName::default().to_string(), "api_tokens");
/// # Ok::<(), api_tokens::TableNameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<Box<str>>,
    table: Box<str>,
}

impl TableName {
    /// Validates `name`: `table` or `schema.table`.
    ///
    /// # Errors
    ///
    /// [`TableNameError`] naming the rule `name` breaks.
    pub fn new(name: &str) -> Result<Self, TableNameError> {
        let mut parts = name.split('.');
        let first = parts.next().unwrap_or_default();
        let (schema, table) = match (parts.next(), parts.next()) {
            (None, _) => (None, first),
            (Some(table), None) => (Some(first), table),
            (Some(_), Some(_)) => return Err(TableNameError::TooManyParts),
        };
        let mut offset = 0;
        if let Some(schema) = schema {
            check_part(schema, MAX_SCHEMA_NAME_LEN, offset)?;
            offset = schema.len() + 1;
        }
        check_part(table, MAX_TABLE_NAME_LEN, offset)?;
        Ok(TableName {
            schema: schema.map(Into::into),
            table: table.into(),
        })
    }

    /// The schema part, if the name has one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table part.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The quoted, schema-qualified name of the table, or of the table
    /// named after it with `suffix` (`_scope_revocations`).
    pub(crate) fn quoted(&self, suffix: &str) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}{suffix}\"", self.table),
            None => format!("\"{}{suffix}\"", self.table),
        }
    }

    /// The quoted name of an object named after the table that lives in its
    /// schema without being qualified: an index (`_by_scope`).
    pub(crate) fn quoted_unqualified(&self, suffix: &str) -> String {
        format!("\"{}{suffix}\"", self.table)
    }
}

/// Checks one part of a name; `offset` is where it starts in the whole.
fn check_part(part: &str, max: usize, offset: usize) -> Result<(), TableNameError> {
    if part.is_empty() {
        return Err(TableNameError::Empty);
    }
    if part.len() > max {
        return Err(TableNameError::TooLong { max });
    }
    let allowed = |(index, c): (usize, char)| {
        c.is_ascii_lowercase() || c == '_' || (index > 0 && c.is_ascii_digit())
    };
    match part.char_indices().find(|&(index, c)| !allowed((index, c))) {
        Some((index, _)) => Err(TableNameError::InvalidCharacter {
            position: offset + index,
        }),
        None => Ok(()),
    }
}

impl Default for TableName {
    /// `api_tokens`, in the connection's default schema.
    fn default() -> Self {
        TableName {
            schema: None,
            table: "api_tokens".into(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

impl FromStr for TableName {
    type Err = TableNameError;

    fn from_str(name: &str) -> Result<Self, TableNameError> {
        TableName::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_schema_qualified_names() {
        for (given, schema, table) in [
            ("api_tokens", None, "api_tokens"),
            ("_t1", None, "_t1"),
            ("billing.tokens_v2", Some("billing"), "tokens_v2"),
        ] {
            let name = TableName::new(given).unwrap();
            assert_eq!((name.schema(), name.table()), (schema, table));
            assert_eq!(name.to_string(), given);
        }
        let name = TableName::new("billing.tokens").unwrap();
        assert_eq!(
            name.quoted("_scope_revocations"),
            r#""billing"."tokens_scope_revocations""#
        );
        assert_eq!(name.quoted_unqualified("_by_scope"), r#""tokens_by_scope""#);
    }

    #[test]
    fn refuses_anything_that_is_not_a_plain_name() {
        use TableNameError::*;
        for (given, error) in [
            ("", Empty),
            ("billing.", Empty),
            (".tokens", Empty),
            ("a.b.c", TooManyParts),
            ("Tokens", InvalidCharacter { position: 0 }),
            ("1tokens", InvalidCharacter { position: 0 }),
            ("tok ens", InvalidCharacter { position: 3 }),
            ("tokens\"", InvalidCharacter { position: 6 }),
            ("x.tokens;drop", InvalidCharacter { position: 8 }),
            ("tökens", InvalidCharacter { position: 1 }),
        ] {
            assert_eq!(TableName::new(given), Err(error), "{given:?}");
        }
        let long = "t".repeat(MAX_TABLE_NAME_LEN + 1);
        assert!(matches!(
            TableName::new(&long),
            Err(TableNameError::TooLong {
                max: MAX_TABLE_NAME_LEN
            })
        ));
        assert!(TableName::new(&long[1..]).is_ok());
    }
}
