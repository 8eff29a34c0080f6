//! CIFAR binaries, image folders, the statistics cache, flips and the data summary, on small generated files,
//! with every kind of bad input.

mod common;

use common::scratch;
use image::{GrayImage, Luma, Rgb, RgbImage};
use spidernet::data::{self, CifarKind, DataOptions, parse_cifar};
use std::path::{Path, PathBuf};

fn load(spec: &str, options: &DataOptions) -> anyhow::Result<data::Dataset> {
    Ok(data::load(spec, options, 0, None)?.dataset)
}

fn load_error(spec: &str, options: &DataOptions) -> String {
    format!("{:#}", load(spec, options).unwrap_err())
}

/// `count` CIFAR records; pixel bytes encode the record index so the order can be checked.
fn cifar_records(kind: CifarKind, count: usize, label: impl Fn(usize) -> [u8; 2]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..count {
        let labels = label(i);
        match kind {
            CifarKind::Cifar10 => bytes.push(labels[0]),
            _ => bytes.extend(labels),
        }
        bytes.extend((0..3072).map(|p| ((i * 31 + p) % 256) as u8));
    }
    bytes
}

fn cifar10_folder(name: &str) -> PathBuf {
    let dir = scratch(name).join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for batch in 1..=5 {
        let records = cifar_records(CifarKind::Cifar10, 4, |i| [((batch * 4 + i) % 10) as u8, 0]);
        std::fs::write(dir.join(format!("data_batch_{batch}.bin")), records).unwrap();
    }
    std::fs::write(
        dir.join("test_batch.bin"),
        cifar_records(CifarKind::Cifar10, 3, |i| [i as u8, 0]),
    )
    .unwrap();
    dir.parent().unwrap().to_path_buf()
}

fn cifar100_folder(name: &str) -> PathBuf {
    let dir = scratch(name);
    // Fine label i, coarse label i / 5: every fine and coarse class present.
    let label = |i: usize| [((i % 100) / 5) as u8, (i % 100) as u8];
    std::fs::write(
        dir.join("train.bin"),
        cifar_records(CifarKind::Cifar100Fine, 200, label),
    )
    .unwrap();
    std::fs::write(dir.join("test.bin"), cifar_records(CifarKind::Cifar100Fine, 7, label)).unwrap();
    dir
}

#[test]
fn cifar10_loads_from_the_extracted_archive_folder() {
    let dir = cifar10_folder("cifar10");
    let data = load(&format!("cifar10:{}", dir.display()), &DataOptions::default()).unwrap();
    assert_eq!(data.train.images.size(), [20, 3, 32, 32]);
    assert_eq!(data.test.len(), 3);
    assert_eq!(data.classes, 10);
    assert_eq!(data.class_names[0], "airplane");
    assert!(data.horizontal_flip);
    let labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
    assert_eq!(&labels[..6], &[4, 5, 6, 7, 8, 9], "batches in order, records in order");
    // Channel 1 of record 0 starts at byte 1024 of its pixels: (0 * 31 + 1024) % 256 = 0, and pixel 1 is 1.
    let raw = data.train.images.get(0).get(1).get(0);
    let stats = &data.normalization;
    let first: Vec<f64> = (0..2)
        .map(|x| raw.double_value(&[x]) * stats.std[1] + stats.mean[1])
        .collect();
    assert!(
        (first[0] - 0.0).abs() < 1e-5 && (first[1] - 1.0 / 255.0).abs() < 1e-5,
        "{first:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cifar100_has_fine_and_coarse_labels() {
    let dir = cifar100_folder("cifar100");
    let fine = load(&format!("cifar100:{}", dir.display()), &DataOptions::default()).unwrap();
    let coarse = load(&format!("cifar100-coarse:{}", dir.display()), &DataOptions::default()).unwrap();
    assert_eq!((fine.classes, coarse.classes), (100, 20));
    let fine_labels = Vec::<i64>::try_from(&fine.train.labels).unwrap();
    let coarse_labels = Vec::<i64>::try_from(&coarse.train.labels).unwrap();
    assert_eq!(&fine_labels[..3], &[0, 1, 2]);
    assert_eq!(coarse_labels[7], 1);
    assert_eq!(coarse_labels[199], 19);
    assert!(
        data::summary(&fine).contains("more classes"),
        "a 100-class table is condensed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_cifar_input_names_the_file_and_the_problem() {
    let dir = cifar10_folder("cifar-bad");
    let spec = format!("cifar10:{}", dir.display());
    let batch = dir.join("cifar-10-batches-bin/data_batch_3.bin");
    let good = std::fs::read(&batch).unwrap();

    std::fs::write(&batch, &good[..good.len() - 100]).unwrap();
    let error = load_error(&spec, &DataOptions::default());
    assert!(
        error.contains("data_batch_3.bin") && error.contains("not a whole number of 3073-byte records"),
        "{error}"
    );

    let mut bad_label = good.clone();
    bad_label[3073] = 10;
    std::fs::write(&batch, &bad_label).unwrap();
    let error = load_error(&spec, &DataOptions::default());
    assert!(
        error.contains("data_batch_3.bin: record 1: label 10 is out of range for 10 classes"),
        "{error}"
    );

    std::fs::write(&batch, []).unwrap();
    assert!(load_error(&spec, &DataOptions::default()).contains("data_batch_3.bin: the file is empty"));

    std::fs::remove_file(&batch).unwrap();
    let error = load_error(&spec, &DataOptions::default());
    assert!(error.contains("missing data_batch_3.bin"), "{error}");

    // A CIFAR-100 record (2 label bytes) read as CIFAR-10 does not fit its record size.
    let record = cifar_records(CifarKind::Cifar100Fine, 1, |_| [3, 57]);
    let error = parse_cifar(&record, CifarKind::Cifar10, Path::new("x.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("x.bin: 3074 bytes is not a whole number of 3073-byte records"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_gray(path: &Path, side: u32, value: u8) {
    GrayImage::from_pixel(side, side, Luma([value])).save(path).unwrap();
}

/// A folder of three classes with `per_class` grayscale 12×12 PNG images each.
fn image_folder(name: &str, per_class: usize) -> PathBuf {
    let dir = scratch(name);
    for (class, value) in [("cat", 10u8), ("dog", 120), ("eel", 250)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            write_gray(&dir.join(class).join(format!("{i}.png")), 12, value);
        }
    }
    std::fs::write(dir.join("cat/notes.txt"), "not an image, ignored").unwrap();
    dir
}

#[test]
fn image_folders_split_by_seed_and_keep_class_names() {
    let dir = image_folder("folder-ok", 10);
    let spec = format!("folder:{}", dir.display());
    let data = load(&spec, &DataOptions::default()).unwrap();
    assert_eq!(data.class_names, ["cat", "dog", "eel"]);
    assert_eq!(data.shape.channels, 1, "all-grayscale images give one channel");
    assert_eq!(
        (data.train.len(), data.test.len()),
        (24, 6),
        "a fifth of each class is held out"
    );
    let table = data::summary(&data);
    assert!(common::has_row(&table, "cat", 8, 2), "{table}");

    // A colour image makes it a 3-channel data set; its size must still match without --image-size.
    RgbImage::from_pixel(12, 12, Rgb([255, 0, 0]))
        .save(dir.join("dog/red.png"))
        .unwrap();
    let data = load(&spec, &DataOptions::default()).unwrap();
    assert_eq!(data.shape.channels, 3);

    // Explicit train/ and test/ folders are used as given.
    let split = scratch("folder-split");
    for (part, count) in [("train", 4), ("test", 1)] {
        for class in ["a", "b"] {
            std::fs::create_dir_all(split.join(part).join(class)).unwrap();
            for i in 0..count {
                write_gray(&split.join(part).join(class).join(format!("{i}.png")), 9, 7);
            }
        }
    }
    let data = load(&format!("folder:{}", split.display()), &DataOptions::default()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (8, 2));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&split);
}

#[test]
fn image_size_resizes_and_mixed_sizes_without_it_are_refused() {
    let dir = image_folder("folder-sizes", 4);
    write_gray(&dir.join("dog/big.png"), 20, 99);
    let spec = format!("folder:{}", dir.display());
    let error = load_error(&spec, &DataOptions::default());
    assert!(
        error.contains("mixed image sizes") && error.contains("big.png is 20x20") && error.contains("--image-size"),
        "{error}"
    );
    let options = DataOptions {
        image_size: Some((16, 10)),
        flip: None,
    };
    let data = load(&spec, &options).unwrap();
    assert_eq!(data.train.images.size()[2..], [16, 10]);
    let error = load_error("digits", &options);
    assert!(
        error.contains("--image-size applies to folder:DIR data only"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_image_folders_name_the_file_and_the_problem() {
    let dir = image_folder("folder-bad", 3);
    let spec = format!("folder:{}", dir.display());

    std::fs::write(dir.join("dog/broken.png"), b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    let error = load_error(&spec, &DataOptions::default());
    assert!(
        error.contains("broken.png: not a decodable PNG or JPEG image"),
        "{error}"
    );
    std::fs::remove_file(dir.join("dog/broken.png")).unwrap();

    std::fs::create_dir_all(dir.join("fox")).unwrap();
    let error = load_error(&spec, &DataOptions::default());
    assert!(
        error.contains("fox: the class folder holds no PNG or JPEG image"),
        "{error}"
    );

    let error = load_error(
        &format!("folder:{}", dir.join("nowhere").display()),
        &DataOptions::default(),
    );
    assert!(error.contains("nowhere: no such folder"), "{error}");

    let error = load_error("folder", &DataOptions::default());
    assert!(error.contains("folder:DIR"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn images_too_small_for_the_reductions_are_refused_by_the_cli() {
    let dir = image_folder("folder-tiny", 3);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(["train-supernet", "--epochs", "1", "--reductions", "4", "--data"])
        .arg(format!("folder:{}", dir.display()))
        .env("SPIDERNET_CACHE", dir.join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--data folder:") && stderr.contains("input 12x12 is too small for 4 reductions"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn statistics_are_cached_per_source_and_a_bad_cache_is_recomputed() {
    let cache = scratch("stats-cache");
    let first = data::load("digits", &DataOptions::default(), 0, Some(&cache)).unwrap();
    let second = data::load("digits", &DataOptions::default(), 0, Some(&cache)).unwrap();
    let other_seed = data::load("digits", &DataOptions::default(), 1, Some(&cache)).unwrap();
    assert!(!first.statistics_cached && second.statistics_cached && !other_seed.statistics_cached);
    assert_eq!(first.dataset.normalization, second.dataset.normalization);
    assert_ne!(first.dataset.normalization, other_seed.dataset.normalization);
    for file in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(file.unwrap().path(), "{ not json").unwrap();
    }
    let again = data::load("digits", &DataOptions::default(), 0, Some(&cache)).unwrap();
    assert!(!again.statistics_cached);
    assert_eq!(again.dataset.normalization, first.dataset.normalization);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn flips_follow_the_source_unless_forced() {
    let digits = load("digits", &DataOptions::default()).unwrap();
    assert!(!digits.horizontal_flip && !digits.augment().horizontal_flip);
    let forced = DataOptions {
        image_size: None,
        flip: Some(true),
    };
    assert!(load("digits", &forced).unwrap().augment().horizontal_flip);
    let dir = cifar10_folder("cifar-flip");
    let off = DataOptions {
        image_size: None,
        flip: Some(false),
    };
    assert!(
        !load(&format!("cifar10:{}", dir.display()), &off)
            .unwrap()
            .horizontal_flip
    );
    let _ = std::fs::remove_dir_all(&dir);
}
