//! Durable file-system steps shared by the log and the file sinks.

use std::fs::File;
use std::path::Path;

use crate::error::ConnectorError;

/// Makes the entries of `dir` (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ConnectorError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| ConnectorError::io(dir, error))
}
