//! The one error type of the tool: a message, the file it concerns, and an exit code.

use std::fmt;
use std::path::Path;

/// Exit code for a usage mistake (bad arguments).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for every other failure.
pub const EXIT_FAILURE: u8 = 1;

/// An error shown to the user as one line: `panns: error: <what> (<file>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong, in plain words.
    pub what: String,
    /// The file (or data set) concerned, if any.
    pub file: Option<String>,
    /// Process exit code.
    pub code: u8,
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// A failure (exit code 1) not tied to a file.
    pub fn new(what: impl Into<String>) -> Self {
        CliError {
            what: what.into(),
            file: None,
            code: EXIT_FAILURE,
        }
    }

    /// A usage mistake (exit code 2).
    pub fn usage(what: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            ..CliError::new(what)
        }
    }

    /// Attaches the file the error concerns (kept if one is attached already).
    pub fn with_file(mut self, file: impl AsRef<Path>) -> Self {
        if self.file.is_none() {
            self.file = Some(file.as_ref().display().to_string());
        }
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep the message on one line whatever the underlying error printed.
        let what = self.what.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "panns: error: {what}")?;
        if let Some(file) = &self.file {
            write!(f, " ({file})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<panns_core::Error> for CliError {
    fn from(e: panns_core::Error) -> Self {
        CliError::new(e.to_string())
    }
}

/// Adds the file name to any error convertible into a [`CliError`].
pub trait Context<T> {
    /// Converts the error and names `file` in it.
    fn in_file(self, file: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: Into<CliError>> Context<T> for std::result::Result<T, E> {
    fn in_file(self, file: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| e.into().with_file(file))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        CliError::new(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_on_one_line_with_the_file() {
        let e = CliError::new("bad\nthing").with_file("a.csv");
        assert_eq!(e.to_string(), "panns: error: bad thing (a.csv)");
        assert_eq!(e.code, EXIT_FAILURE);
        assert_eq!(CliError::usage("x").code, EXIT_USAGE);
    }
}
