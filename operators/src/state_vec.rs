//! Per-key state vectors that grow from one element instead of four.
//!
//! `Vec::push` on an empty vector allocates room for four elements (for elements up to
//! 1 KiB). Keyed state holds one small vector per key, and most keys hold one or two
//! elements (a key's open window, a person's row in a join): four slots per key made q18's
//! state four times its size. [`push`] and [`insert`] grow 1, 2, 4, 8...: the same amortized
//! cost once a vector is long, and no slack for the many short ones.

/// Appends `item` to `vec`, doubling its capacity from one when it is full.
pub(crate) fn push<T>(vec: &mut Vec<T>, item: T) {
    make_room(vec, usize::MAX);
    vec.push(item);
}

/// Inserts `item` into `vec` at `index`, doubling its capacity from one when it is full.
pub(crate) fn insert<T>(vec: &mut Vec<T>, index: usize, item: T) {
    make_room(vec, usize::MAX);
    vec.insert(index, item);
}

/// Inserts `item` into `vec` at `index` as [`insert`] does, for a vector that never holds
/// more than `most` elements: its capacity doubles up to `most` and no further.
pub(crate) fn insert_at_most<T>(vec: &mut Vec<T>, index: usize, item: T, most: usize) {
    make_room(vec, most);
    vec.insert(index, item);
}

fn make_room<T>(vec: &mut Vec<T>, most: usize) {
    if vec.len() == vec.capacity() {
        let more = vec.len().max(1).min(most.saturating_sub(vec.len())).max(1);
        vec.reserve_exact(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_doubles_from_one() {
        let mut vec = Vec::new();
        let mut capacities = Vec::new();
        for item in 0..9_u64 {
            push(&mut vec, item);
            capacities.push(vec.capacity());
        }
        assert_eq!(vec, (0..9).collect::<Vec<_>>());
        assert_eq!(capacities, [1, 2, 4, 4, 8, 8, 8, 8, 16]);
        let mut sorted = Vec::new();
        for item in [5, 1, 3] {
            let at = sorted.partition_point(|held| *held < item);
            insert(&mut sorted, at, item);
        }
        assert_eq!((sorted.clone(), sorted.capacity()), (vec![1, 3, 5], 4));
        let mut top = Vec::new();
        let mut capacities = Vec::new();
        for item in 0..10 {
            insert_at_most(&mut top, 0, item, 10);
            capacities.push(top.capacity());
        }
        assert_eq!(capacities, [1, 2, 4, 4, 8, 8, 8, 8, 10, 10]);
    }
}
