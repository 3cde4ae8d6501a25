//! Where events come from or go to: `log:DIR/TOPIC` or a JSON lines file.

use std::path::PathBuf;
use std::str::FromStr;

/// A topic of the embedded log or a JSON lines file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `log:DIR/TOPIC`: a topic directory.
    Log(PathBuf),
    /// Any other path: a JSON lines file.
    File(PathBuf),
}

impl FromStr for Location {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.strip_prefix("log:") {
            Some("") => Err("log: needs a topic directory, as in log:data/events".into()),
            Some(dir) => Ok(Location::Log(PathBuf::from(dir))),
            None if text.is_empty() => Err("an empty path".into()),
            None => Ok(Location::File(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Log(dir) => write!(f, "log:{}", dir.display()),
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}
