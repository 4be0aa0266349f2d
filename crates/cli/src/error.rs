//! The command's errors and the exit status each one gives.

/// Why the command did not run to the end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line could not be parsed, or asked for help or the version: clap prints it.
    #[error(transparent)]
    Parse(#[from] clap::Error),
    /// A usage or configuration error (exit status 2): the message names the option or the file.
    #[error("{0}")]
    Usage(String),
    /// A signal ended the command (exit status 128 + the signal's number) after it said where every job
    /// stands.
    #[error("{message}")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
        /// The exit status.
        code: u8,
        /// What was cut.
        message: String,
    },
    /// Anything else (exit status 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit status for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            // 0 for --help and --version, 2 for usage errors.
            Self::Parse(e) => u8::try_from(e.exit_code()).unwrap_or(2),
            Self::Usage(_) => 2,
            Self::Interrupted { code, .. } => *code,
            Self::Failed(_) => 1,
        }
    }
}

/// A usage error.
pub(crate) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}
