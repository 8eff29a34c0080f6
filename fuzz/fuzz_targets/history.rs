//! `history.jsonl` as a resume reads it never panics, and whatever it accepts saves and reloads unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::search::IterationRecord;

fuzz_target!(|text: &str| {
    if let Ok(records) = IterationRecord::parse_history(text) {
        let saved: String = records
            .iter()
            .map(|record| serde_json::to_string(record).expect("a record serialises") + "\n")
            .collect();
        let again = IterationRecord::parse_history(&saved).expect("saved records reload");
        assert_eq!(again, records);
    }
});
