//! Any bytes as a run folder's `weights.safetensors`, read as `export` and `Artifacts::load_trained` read them (tch's
//! safetensors reader, then `Supernet::load_named_tensors` against the folder's genotype), never panic; whatever
//! loads has exactly the genotype's tensor names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::artifacts::Artifacts;
use spidernet::genotype::Genotype;
use spidernet::supernet::Supernet;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The genotype of the seeds' weights: a small trained digits network (`fuzz/weights-genotype.json`).
const GENOTYPE: &str = include_str!("../weights-genotype.json");

/// A run folder holding that genotype.
fn folder() -> &'static (PathBuf, Genotype) {
    static FOLDER: OnceLock<(PathBuf, Genotype)> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spidernet-fuzz-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        let genotype = Genotype::from_json(GENOTYPE).expect("the committed genotype is valid");
        std::fs::write(dir.join("genotype.json"), GENOTYPE).expect("genotype.json");
        (dir, genotype)
    })
}

fuzz_target!(|bytes: &[u8]| {
    let (dir, genotype) = folder();
    std::fs::write(dir.join("weights.safetensors"), bytes).expect("weights.safetensors");
    if let Ok((_, tensors)) = Artifacts::new(dir).load_trained() {
        let mut names: Vec<String> = tensors.into_iter().map(|(name, _)| name).collect();
        names.sort();
        let mut expected: Vec<String> = Supernet::builder(genotype)
            .build()
            .named_tensors()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        expected.sort();
        assert_eq!(names, expected);
    }
});
