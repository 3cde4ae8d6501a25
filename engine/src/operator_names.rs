//! Stable names for stateful operators. Checkpointed state is keyed by an operator's id, and
//! the id is derived from its name, not from its place in the dataflow: adding a `filter`
//! upstream leaves every operator's state where it was.
//!
//! An operator's name is the one its builder passes (`"window"`, `"regular join"`, or the
//! user's name for a `process`). A name used again in the same job is numbered in build
//! order: the second `"window"` is `"window#2"`. The id is the CRC-32C of the name less its
//! top bit, which stored keys use to tell timers from state (`state::keys`).

use std::collections::BTreeMap;

/// The stateful operators of one worker's pipeline, by name, with their ids.
#[derive(Debug, Default)]
pub(crate) struct OperatorNames {
    ids: BTreeMap<String, u32>,
}

/// Two operator names whose ids collide; one of them needs another name.
#[derive(Debug, thiserror::Error)]
#[error("operators {first:?} and {second:?} have the same state id {id:08x}: rename one of them")]
pub(crate) struct IdCollision {
    first: String,
    second: String,
    id: u32,
}

impl OperatorNames {
    /// Names the next operator its builder calls `base`: the unique name and its id.
    pub(crate) fn name(&mut self, base: &str) -> Result<(String, u32), IdCollision> {
        let name = (1..)
            .map(|n| match n {
                1 => base.to_owned(),
                n => format!("{base}#{n}"),
            })
            .find(|name| !self.ids.contains_key(name))
            .unwrap_or_else(|| base.to_owned());
        let id = id_of(&name);
        if let Some((first, _)) = self.ids.iter().find(|(_, known)| **known == id) {
            return Err(IdCollision {
                first: first.clone(),
                second: name,
                id,
            });
        }
        self.ids.insert(name.clone(), id);
        Ok((name, id))
    }

    /// Every operator named so far, with its id.
    pub(crate) fn ids(&self) -> &BTreeMap<String, u32> {
        &self.ids
    }
}

/// The id an operator's state is keyed by: 31 bits of the CRC-32C of its name.
fn id_of(name: &str) -> u32 {
    crc32c::crc32c(name.as_bytes()) & !(1 << 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_used_again_are_numbered_and_ids_follow_names() {
        let mut names = OperatorNames::default();
        let (window, id) = names.name("window").unwrap();
        assert_eq!((window.as_str(), id), ("window", id_of("window")));
        assert_eq!(id >> 31, 0, "the top bit marks timers");
        assert_eq!(names.name("join").unwrap().0, "join");
        assert_eq!(names.name("window").unwrap().0, "window#2");
        assert_eq!(names.name("window").unwrap().0, "window#3");
        // Another pipeline naming the same operators in the same order gets the same ids.
        let mut again = OperatorNames::default();
        for base in ["window", "join", "window", "window"] {
            again.name(base).unwrap();
        }
        assert_eq!(again.ids(), names.ids());
    }
}
