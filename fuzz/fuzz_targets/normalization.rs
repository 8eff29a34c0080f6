//! `normalization.json` and the statistics cache (one parser) never panic, and accept only statistics that
//! normalisation can use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::data::Normalization;

fuzz_target!(|text: &str| {
    if let Ok(stats) = Normalization::parse(text) {
        assert!(!stats.mean.is_empty() && stats.mean.len() == stats.std.len());
        assert!(stats.mean.iter().chain(&stats.std).all(|v| v.is_finite()));
        assert!(stats.std.iter().all(|&s| s >= 0.0));
    }
});
