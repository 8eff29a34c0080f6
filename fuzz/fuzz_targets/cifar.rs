//! CIFAR parsing never panics: any bytes give whole records with labels in range, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spidernet::data::{CifarKind, parse_cifar};
use std::path::Path;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, bytes)) = input.split_first() else {
        return;
    };
    let kind = [CifarKind::Cifar10, CifarKind::Cifar100Fine, CifarKind::Cifar100Coarse][selector as usize % 3];
    if let Ok((labels, pixels)) = parse_cifar(bytes, kind, Path::new("fuzz.bin")) {
        assert_eq!(pixels.len(), labels.len() * 3072);
        assert!(labels.iter().all(|&l| (l as usize) < kind.classes()));
    }
});
