//! The per-event random stream of the generator: every field of event `id` is drawn from a
//! stream seeded by `(seed, id)` alone, so any worker can generate any event on its own.

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a good 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a random byte to a text character: `byte % 28` picks one of 26 letters or, for 26 and
/// 27, a space. A table, because building text one checked `char` at a time was a quarter of
/// the generator's time.
const TEXT_ALPHABET: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let pick = (byte % 28) as u8;
        table[byte] = if pick < 26 { b'a' + pick } else { b' ' };
        byte += 1;
    }
    table
};

/// SplitMix64: tiny, fast, and good enough for synthetic data.
pub(crate) struct EventRng {
    state: u64,
}

impl EventRng {
    /// The stream of event `id` under `seed`.
    pub(crate) fn new(seed: u64, id: u64) -> Self {
        // Hashing the id (rather than adding it) keeps the streams of neighbouring ids apart:
        // SplitMix64 streams that start a multiple of its increment apart are shifted copies.
        EventRng {
            state: mix(seed ^ mix(id.wrapping_add(GOLDEN_GAMMA))),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `0..bound`; `bound` must be positive.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `len` random characters: lowercase letters with about one space in fourteen.
    pub(crate) fn text(&mut self, len: usize) -> String {
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            let draw = self
                .next_u64()
                .to_le_bytes()
                .map(|byte| TEXT_ALPHABET[usize::from(byte)]);
            let take = (len - bytes.len()).min(draw.len());
            bytes.extend_from_slice(&draw[..take]);
        }
        String::from_utf8(bytes).expect("the text alphabet is ASCII")
    }

    /// A random text of length uniform in `3..=max_len`.
    pub(crate) fn text_up_to(&mut self, max_len: usize) -> String {
        let len = 3 + self.below((max_len - 2) as u64) as usize;
        self.text(len)
    }

    /// Padding that brings a record of `current_size` bytes to `average_size` bytes on average
    /// (uniform within ±20 %); empty if the record is already that large.
    pub(crate) fn extra(&mut self, current_size: usize, average_size: usize) -> String {
        if current_size >= average_size {
            return String::new();
        }
        let desired = average_size - current_size;
        let delta = (desired as f64 * 0.2).round() as usize;
        let len = desired - delta + self.below(2 * delta as u64 + 1) as usize;
        self.text(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draws = |seed, id| {
            let mut rng = EventRng::new(seed, id);
            (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(1, 5), draws(1, 5));
        assert_ne!(draws(1, 5), draws(1, 6));
        assert_ne!(draws(1, 5), draws(2, 5));
        // Neighbouring ids must not share shifted draws.
        assert_ne!(draws(1, 5)[1], draws(1, 6)[0]);
    }

    #[test]
    fn texts_have_the_asked_lengths() {
        let mut rng = EventRng::new(0, 0);
        for _ in 0..1000 {
            let text = rng.text_up_to(20);
            assert!((3..=20).contains(&text.len()));
            assert!(text.bytes().all(|b| b == b' ' || b.is_ascii_lowercase()));
            let extra = rng.extra(32, 100);
            assert!((54..=82).contains(&extra.len()), "{}", extra.len());
        }
        assert!(rng.extra(120, 100).is_empty());
    }
}
