//! `plans.jsonl` as a resume reads it never panics, and whatever it accepts saves and reloads unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::search::budget::Plan;

fuzz_target!(|text: &str| {
    if let Ok(plans) = Plan::parse_plans(text) {
        let saved: String = plans
            .iter()
            .map(|plan| serde_json::to_string(plan).expect("a plan serialises") + "\n")
            .collect();
        let again = Plan::parse_plans(&saved).expect("saved plans reload");
        assert_eq!(again, plans);
    }
});
