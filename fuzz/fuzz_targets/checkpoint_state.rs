//! `checkpoint/state.json` as a resume reads it never panics, and whatever it accepts saves and reloads unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::search::Checkpoint;

fuzz_target!(|text: &str| {
    let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(text) else {
        return;
    };
    if checkpoint.check().is_ok() {
        let saved = serde_json::to_string_pretty(&checkpoint).expect("a checkpoint serialises");
        let again: Checkpoint = serde_json::from_str(&saved).expect("a saved checkpoint reloads");
        assert!(again.check().is_ok());
        assert_eq!(again, checkpoint);
    }
});
