//! The connectors' error type.

use std::path::PathBuf;

/// A failure reading or writing external data, naming the file and the place in it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("{path}: cannot encode a record as JSON: {source}")]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

impl ConnectorError {
    /// Wraps an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConnectorError::Io {
            path: path.into(),
            source,
        }
    }
}
