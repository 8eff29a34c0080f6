//! IDX data (MNIST-style): small generated files in every variant, every kind of bad input, and the real
//! Fashion-MNIST when it is installed.

mod common;

use common::scratch;
use spidernet::data::{self, DataOptions, DataSource, IdxFolder};
use std::io::Write;
use std::path::{Path, PathBuf};

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

fn write(path: &Path, bytes: &[u8], gzip: bool) {
    if gzip {
        let file = std::fs::File::create(path.with_extension("gz")).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// A folder of the four files: `n` training and `m` test images of 6×5, labels cycling through 3 classes.
fn folder(name: &str, n: u32, m: u32, gzip: bool) -> PathBuf {
    let dir = scratch(name);
    for (prefix, count) in [("train", n), ("t10k", m)] {
        let pixels: Vec<u8> = (0..count * 30).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
        write(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            &idx_bytes(&[count, 6, 5], &pixels),
            gzip,
        );
        write(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &idx_bytes(&[count], &labels),
            gzip,
        );
    }
    dir
}

fn load_error(dir: &Path) -> String {
    format!("{:#}", IdxFolder::generic(dir.to_path_buf()).load(0).unwrap_err())
}

#[test]
fn idx_folders_load_gzipped_or_not() {
    for gzip in [false, true] {
        let dir = folder(&format!("idx-ok{gzip}"), 12, 6, gzip);
        let data = data::source(&format!("idx:{}", dir.display()), &DataOptions::default())
            .unwrap()
            .load(0)
            .unwrap();
        assert_eq!(data.train.images.size(), [12, 1, 6, 5]);
        assert_eq!(data.test.len(), 6);
        assert_eq!(data.classes, 3);
        assert!(!data.horizontal_flip, "digits and characters must not be flipped");
        let first = Vec::<i64>::try_from(&data.train.labels).unwrap();
        assert_eq!(&first[..4], &[0, 1, 2, 0]);
        let mean = data.train.images.mean(tch::Kind::Float).double_value(&[]);
        assert!(mean.abs() < 1e-4, "normalised with training statistics: mean {mean}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn every_kind_of_bad_idx_input_names_the_file_and_the_problem() {
    let dir = folder("idx-bad", 9, 3, false);
    let images = dir.join("train-images-idx3-ubyte");
    let labels = dir.join("train-labels-idx1-ubyte");
    let good_images = std::fs::read(&images).unwrap();
    let good_labels = std::fs::read(&labels).unwrap();

    let mut wrong_magic = good_images.clone();
    wrong_magic[0] = 0x42;
    std::fs::write(&images, &wrong_magic).unwrap();
    let error = load_error(&dir);
    assert!(error.contains("train-images-idx3-ubyte: not an IDX file"), "{error}");

    std::fs::write(&images, &good_images[..good_images.len() - 7]).unwrap();
    let error = load_error(&dir);
    assert!(
        error.contains("train-images-idx3-ubyte") && error.contains("(truncated)"),
        "{error}"
    );

    std::fs::write(&images, &good_images).unwrap();
    std::fs::write(&labels, idx_bytes(&[8], &[0, 1, 2, 0, 1, 2, 0, 1])).unwrap();
    let error = load_error(&dir);
    assert!(
        error.contains("holds 9 images but") && error.contains("holds 8 labels"),
        "{error}"
    );

    // Label 7 with only classes 0–2 otherwise present leaves classes 3–6 empty.
    std::fs::write(&labels, idx_bytes(&[9], &[0, 1, 2, 0, 1, 2, 0, 1, 7])).unwrap();
    let error = load_error(&dir);
    assert!(error.contains("class 3 (3) has no training image"), "{error}");

    std::fs::write(&labels, &good_labels).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_bytes(&[3], &[0, 1, 5])).unwrap();
    let error = load_error(&dir);
    assert!(
        error.contains("t10k-labels-idx1-ubyte: label 5 is out of range"),
        "{error}"
    );

    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let error = load_error(&dir);
    assert!(error.contains("missing t10k-labels-idx1-ubyte"), "{error}");

    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), [0x1f, 0x8b, 0x08, 0, 1, 2, 3]).unwrap();
    let error = load_error(&dir);
    assert!(
        error.contains("t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip"),
        "{error}"
    );

    assert!(
        format!("{:#}", data::source("cifar7", &DataOptions::default()).err().unwrap()).contains("unknown data set")
    );
    assert!(format!("{:#}", data::source("idx", &DataOptions::default()).err().unwrap()).contains("idx:DIR"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn real_fashion_mnist_loads_when_installed() {
    if !common::fashion_mnist_or_skip("real_fashion_mnist_loads_when_installed") {
        return;
    }
    let start = std::time::Instant::now();
    let data = data::source("fashion-mnist", &DataOptions::default())
        .unwrap()
        .load(0)
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(data.train.images.size(), [60_000, 1, 28, 28]);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.classes, 10);
    assert!(data.horizontal_flip);
    assert_eq!(data.class_names[9], "Ankle boot");
    let table = data::summary(&data);
    assert!(common::has_row(&table, "Ankle boot", 6000, 1000), "{table}");
    eprintln!("Fashion-MNIST loaded in {seconds:.2} s");
}
