//! Genotype JSON never panics, and whatever it accepts survives a save and reload unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::genotype::Genotype;

fuzz_target!(|text: &str| {
    if let Ok(genotype) = Genotype::from_json(text) {
        let again = Genotype::from_json(&genotype.to_json()).expect("a saved genotype reloads");
        assert_eq!(again, genotype);
    }
});
