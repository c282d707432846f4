//! `scanner-rules`: the detect-secrets plugin or the gitleaks config for
//! the service's token format, written by the crate's `TokenFormat` so
//! that they match the tokens exactly.

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::failure::Failure;
use crate::output::Report;
use crate::session::Global;

#[derive(Args, Debug)]
pub(crate) struct ScannerRulesArgs {
    /// Which scanner's file to print.
    #[arg(value_enum)]
    scanner: Scanner,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scanner {
    /// A Python module: a plugin that checks each token's checksum and a
    /// filter that drops near misses (save as <prefix>_tokens.py).
    DetectSecrets,
    /// A gitleaks config: the default rules and one for the tokens.
    Gitleaks,
}

/// Prints the file on stdout, and on stderr how to use it.
pub(crate) fn scanner_rules(args: &ScannerRulesArgs, global: &Global) -> Result<Report, Failure> {
    let format = global.format()?;
    let prefix = format.prefix();
    let (file, note) = match args.scanner {
        Scanner::DetectSecrets => (
            format.detect_secrets_plugin(),
            format!(
                "save it as {prefix}_tokens.py, then: detect-secrets scan --plugin {prefix}_tokens.py \
                 --filter ./{prefix}_tokens.py::is_damaged_token [path ...]"
            ),
        ),
        Scanner::Gitleaks => (
            format.gitleaks_config(),
            format!(
                "save it as {prefix}-gitleaks.toml, then: gitleaks git --config {prefix}-gitleaks.toml"
            ),
        ),
    };
    let json = json!({ "prefix": prefix, "file": file });
    Ok(Report::new(file, json).note(note))
}
