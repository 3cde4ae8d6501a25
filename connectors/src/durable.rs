//! Durable file-system steps shared by the log and the file sinks.

use std::path::Path;

use serde::Serialize;

use crate::error::ConnectorError;

/// Makes the entries of `dir` (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ConnectorError> {
    weir_engine::durable::sync_dir(dir).map_err(|error| ConnectorError::io(dir, error))
}

/// Creates `dir` and its missing parents durably (each new directory's entry synced).
pub(crate) fn create_dir_all(dir: &Path) -> Result<(), ConnectorError> {
    weir_engine::durable::create_dir_all(dir).map_err(|error| ConnectorError::io(dir, error))
}

/// Replaces the file `path` with `bytes` so that a crash leaves the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConnectorError> {
    weir_engine::durable::write_atomically(path, bytes)
        .map_err(|error| ConnectorError::io(path, error))
}

/// Replaces the file `path` with `value` as JSON, as [`write_atomically`] does.
pub(crate) fn write_json_atomically<T: Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), ConnectorError> {
    let json = serde_json::to_vec(value).map_err(|source| ConnectorError::Encode {
        path: path.to_owned(),
        source,
    })?;
    write_atomically(path, &json)
}
