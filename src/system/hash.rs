//! A hash that stays the same across runs, builds and toolchains (64-bit FNV-1a), for names that pick seeds and
//! for cache keys. `std`'s `DefaultHasher` may change between Rust releases, so it suits neither.

/// 64-bit FNV-1a of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::stable_hash;

    #[test]
    fn matches_the_published_fnv1a_test_vectors() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
