//! IDX parsing never panics: any bytes give dimensions whose product is the data length, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::data::parse_idx;
use std::path::Path;

fuzz_target!(|input: &[u8]| {
    let Some((&rank, bytes)) = input.split_first() else {
        return;
    };
    let rank = 1 + rank as usize % 3;
    if let Ok((dims, data)) = parse_idx(bytes, rank, Path::new("fuzz.idx")) {
        assert_eq!(dims.len(), rank);
        assert_eq!(dims.iter().product::<usize>(), data.len());
    }
});
