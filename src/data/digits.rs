//! The embedded UCI optical-digits set (1,797 grayscale 8×8 images, 10 classes).

use super::{DataSource, RawData, numbered_classes};
use crate::seed::{self, Stream};
use anyhow::{Context, bail};
use rand::seq::SliceRandom;
use std::io::Read;
use tch::Tensor;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits/digits.csv.gz");
const SIDE: usize = 8;
const PIXELS: usize = SIDE * SIDE;
const CLASSES: usize = 10;
const MAX_PIXEL: f32 = 16.0;

/// The digits data set, split 80 % / 20 % into training and test sets by seed.
#[derive(Clone, Debug)]
pub struct Digits {
    /// Fraction of samples that go to the training split.
    pub train_fraction: f64,
}

impl Default for Digits {
    fn default() -> Self {
        Digits { train_fraction: 0.8 }
    }
}

/// Pixels (0..=16, row-major) and labels parsed from the digits CSV text.
pub fn parse_digits_csv(text: &str, origin: &str) -> anyhow::Result<(Vec<f32>, Vec<i64>)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != PIXELS + 1 {
            bail!(
                "{origin}: line {}: expected {} values, found {}",
                number + 1,
                PIXELS + 1,
                fields.len()
            );
        }
        for field in &fields[..PIXELS] {
            let value: f32 = field
                .parse()
                .with_context(|| format!("{origin}: line {}: pixel '{field}' is not a number", number + 1))?;
            if !(0.0..=MAX_PIXEL).contains(&value) {
                bail!("{origin}: line {}: pixel {value} is outside 0..=16", number + 1);
            }
            pixels.push(value / MAX_PIXEL);
        }
        let label: i64 = fields[PIXELS].parse().with_context(|| {
            format!(
                "{origin}: line {}: label '{}' is not an integer",
                number + 1,
                fields[PIXELS]
            )
        })?;
        if !(0..CLASSES as i64).contains(&label) {
            bail!("{origin}: line {}: label {label} is outside 0..{CLASSES}", number + 1);
        }
        labels.push(label);
    }
    Ok((pixels, labels))
}

impl DataSource for Digits {
    fn fingerprint(&self, seed: u64) -> Option<String> {
        Some(format!(
            "digits embedded {} bytes, train fraction {}, seed {seed}",
            DIGITS_CSV_GZ.len(),
            self.train_fraction
        ))
    }

    fn read(&self, seed: u64) -> anyhow::Result<RawData> {
        let origin = "embedded digits.csv.gz";
        let mut text = String::new();
        flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
            .read_to_string(&mut text)
            .with_context(|| format!("{origin}: cannot decompress"))?;
        let (pixels, labels) = parse_digits_csv(&text, origin)?;
        let n = labels.len();
        let images = Tensor::from_slice(&pixels).view([n as i64, 1, SIDE as i64, SIDE as i64]);
        let labels = Tensor::from_slice(&labels);

        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(&mut seed::rng(seed, Stream::DataSplit, seed::data_split::TRAIN_TEST));
        let n_train = ((n as f64) * self.train_fraction).round() as usize;
        if n_train == 0 || n_train >= n {
            bail!(
                "train fraction {} leaves an empty split of {n} samples",
                self.train_fraction
            );
        }
        let take = |range: std::ops::Range<usize>| {
            let index = Tensor::from_slice(&order[range]);
            (images.index_select(0, &index), labels.index_select(0, &index))
        };
        let (train_images, train_labels) = take(0..n_train);
        let (test_images, test_labels) = take(n_train..n);
        Ok(RawData {
            name: "digits".to_string(),
            class_names: numbered_classes(CLASSES),
            train_images,
            train_labels,
            test_images,
            test_labels,
            horizontal_flip: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_digits_load_with_expected_shape_and_split() {
        let data = Digits::default().load(0).unwrap();
        assert_eq!(data.train.len(), 1438);
        assert_eq!(data.test.len(), 359);
        assert_eq!(data.train.images.size(), vec![1438, 1, 8, 8]);
        assert_eq!(data.classes, 10);
        let mean = data.train.images.mean(tch::Kind::Float).double_value(&[]);
        let std = data.train.images.std(false).double_value(&[]);
        assert!(mean.abs() < 1e-4, "normalised mean {mean}");
        assert!((std - 1.0).abs() < 1e-3, "normalised std {std}");
        let labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
        for class in 0..10 {
            assert!(labels.iter().filter(|&&l| l == class).count() > 100);
        }
    }

    #[test]
    fn split_depends_on_seed_only() {
        let a = Digits::default().load(0).unwrap();
        let b = Digits::default().load(0).unwrap();
        let c = Digits::default().load(1).unwrap();
        assert!(a.test.images.equal(&b.test.images));
        assert!(!a.test.images.equal(&c.test.images));
    }

    #[test]
    fn bad_rows_are_reported_with_line_numbers() {
        let err = parse_digits_csv("1,2,3\n", "x.csv").unwrap_err().to_string();
        assert!(err.contains("x.csv: line 1: expected 65 values, found 3"), "{err}");
        let row: Vec<String> = (0..64).map(|_| "0".to_string()).chain(["12".to_string()]).collect();
        let err = parse_digits_csv(&row.join(","), "x.csv").unwrap_err().to_string();
        assert!(err.contains("label 12 is outside 0..10"), "{err}");
    }
}
