//! What every command is given (the global options and the environment),
//! and the token service a command runs its calls through.

use std::path::PathBuf;
use std::sync::Arc;

use api_tokens::store::TableName;
use api_tokens::{
    Actor, ActorId, ExpiryPolicy, HashKey, KeyId, Keyring, Role, Scope, TokenFormat, TokenService,
    TokenStore,
};
use clap::Args;

use crate::audit_log::JsonLinesSink;
use crate::database::{self, Database, Opened};
use crate::failure::{Failure, with_causes};
use crate::output::Report;

/// The environment variable the hash keys are read from: never a flag,
/// which would land in shell history and process listings.
pub(crate) const KEYS_VAR: &str = "API_TOKENS_KEYS";

/// Options every command takes (before or after its name).
#[derive(Args, Debug)]
pub(crate) struct Global {
    /// The token database: sqlite:<path>, or postgres://user@host/db
    /// (postgresql:// too; ?sslmode=verify-full for TLS).
    #[arg(
        long,
        global = true,
        env = "API_TOKENS_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) database: Option<String>,

    /// The table the tokens live in; schema.table on PostgreSQL
    /// [default: api_tokens].
    #[arg(long, global = true, env = "API_TOKENS_TABLE", value_name = "NAME")]
    pub(crate) table: Option<String>,

    /// The prefix your service's tokens start with (its TokenFormat).
    #[arg(long, global = true, env = "API_TOKENS_PREFIX")]
    pub(crate) prefix: Option<String>,

    /// Who runs the command, named in the audit trail. Required by every
    /// command that changes something.
    #[arg(long, global = true, env = "API_TOKENS_OPERATOR", value_name = "NAME")]
    pub(crate) operator: Option<String>,

    /// Append audit events to this file, one JSON object per line
    /// [default: stderr].
    #[arg(long, global = true, env = "API_TOKENS_AUDIT_LOG", value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl Global {
    pub(crate) fn database(&self) -> Result<Database, Failure> {
        match &self.database {
            Some(url) => Database::parse(url),
            None => Err(Failure::input(
                "say which database: --database <url> or API_TOKENS_DATABASE_URL",
            )),
        }
    }

    pub(crate) fn table(&self) -> Result<TableName, Failure> {
        match &self.table {
            Some(name) => name
                .parse()
                .map_err(|error| Failure::input(format!("--table: {error}"))),
            None => Ok(TableName::default()),
        }
    }

    pub(crate) fn format(&self) -> Result<TokenFormat, Failure> {
        let prefix = self.prefix.as_deref().ok_or_else(|| {
            Failure::input(
                "say which token prefix your service uses: --prefix <prefix> or \
                 API_TOKENS_PREFIX",
            )
        })?;
        TokenFormat::new(prefix).map_err(|error| Failure::input(format!("--prefix: {error}")))
    }

    /// The operator, required: for commands that change something.
    pub(crate) fn operator(&self) -> Result<ActorId, Failure> {
        let name = self.operator.as_deref().ok_or_else(|| {
            Failure::input(
                "this command changes tokens: say who you are with --operator <name> or \
                 API_TOKENS_OPERATOR (it is written in the audit trail)",
            )
        })?;
        ActorId::new(name).map_err(|error| Failure::input(format!("--operator: {error}")))
    }

    /// The operator if given, else a name for a read-only command's calls
    /// (which are never audited when they succeed).
    fn reader(&self) -> Result<ActorId, Failure> {
        match &self.operator {
            Some(_) => self.operator(),
            None => ActorId::new("api-tokens-cli").map_err(Failure::input),
        }
    }
}

/// The hash keys, from [`KEYS_VAR`].
///
/// # Errors
///
/// Exit code 2 if the variable is missing or not a keyring (the message
/// names the entry and its problem, never a character of the text).
pub(crate) fn keys_from_env() -> Result<Keyring, Failure> {
    let text = std::env::var(KEYS_VAR).map_err(|_| {
        Failure::input(format!(
            "set {KEYS_VAR} to your service's hash keys (\"2:<key>,1:<key>\", current first); \
             `api-tokens keygen` makes one"
        ))
    })?;
    Keyring::from_config(text)
        .map_err(|error| Failure::input(format!("{KEYS_VAR} is not a keyring: {error}")))
}

/// Whether a command hashes tokens, and so needs the service's keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// It issues or verifies: the keys from [`KEYS_VAR`].
    Needed,
    /// It only reads or changes records by id: a key made for this run,
    /// which nothing is hashed with, so the real keys stay where they are.
    NotNeeded,
}

/// The service a command calls, over its opened store, with its audit
/// events going to the command line's sink.
pub(crate) struct Session {
    pub(crate) service: TokenService,
    pub(crate) store: Arc<dyn TokenStore>,
    opened: Opened,
    sink: Arc<JsonLinesSink>,
    reader: ActorId,
}

impl Session {
    /// Opens the database and builds the service, checking all the input
    /// first (keys, prefix, audit log) so a mistake changes nothing.
    pub(crate) async fn open(
        global: &Global,
        keys: Keys,
        policy: ExpiryPolicy,
    ) -> Result<Session, Failure> {
        let format = global.format()?;
        let database = global.database()?;
        let table = global.table()?;
        let reader = global.reader()?;
        let keys = match keys {
            Keys::Needed => keys_from_env()?,
            Keys::NotNeeded => Keyring::new(
                KeyId::new(0),
                HashKey::generate().map_err(|error| Failure::store(with_causes(&error)))?,
            ),
        };
        let sink = Arc::new(JsonLinesSink::open(
            global.audit_log.as_deref(),
            global.operator.clone(),
        )?);
        let opened = database::open(&database, &table).await?;
        let store = opened.store();
        let service = TokenService::new(format, keys, store.clone())
            .with_audit_sink(sink.clone())
            .with_expiry_policy(policy)
            // `check` is not a use of the token: nothing is noted.
            .with_last_used_interval(None)
            .map_err(Failure::input)?;
        Ok(Session {
            service,
            store,
            opened,
            sink,
            reader,
        })
    }

    /// The operator, acting as owner of `scope`: every call of the service
    /// is then allowed and audited under the operator's name.
    pub(crate) fn owner_of(operator: &ActorId, scope: &Scope) -> Actor {
        Actor::new(operator.clone()).with_grant(scope.clone(), Role::Owner)
    }

    /// The actor for read-only calls: the operator if one was given.
    pub(crate) fn reader(&self) -> &ActorId {
        &self.reader
    }

    /// Delivers every audit event, closes the database, and gives the
    /// command's outcome. A command that did its work but whose audit
    /// events could not all be written still prints what it did (an issued
    /// token is shown only this once), with exit code 3 and a note.
    pub(crate) async fn finish(self, outcome: Result<Report, Failure>) -> Result<Report, Failure> {
        self.service.flush_audit().await;
        self.opened.close().await;
        if !self.sink.failed() && self.service.audit_events_dropped() == 0 {
            return outcome;
        }
        const INCOMPLETE: &str =
            "the audit trail is incomplete: an event could not be written to the audit log";
        match outcome {
            Ok(report) => {
                let note = match report.note {
                    Some(note) => format!("{note}\n{INCOMPLETE}"),
                    None => INCOMPLETE.to_owned(),
                };
                Ok(Report {
                    code: 3,
                    note: Some(note),
                    ..report
                })
            }
            Err(failure) => Err(Failure::store(format!("{}; {INCOMPLETE}", failure.message))),
        }
    }
}
