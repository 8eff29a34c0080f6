//! A readable summary of a data set: shape, splits and images per class.

use super::Dataset;

/// Classes beyond which the per-class table is condensed to its extremes.
const FULL_TABLE: usize = 20;

fn counts(labels: &tch::Tensor, classes: usize) -> Vec<i64> {
    Vec::<i64>::try_from(labels.bincount(None::<tch::Tensor>, classes as i64)).unwrap_or_default()
}

/// Lines describing `data`: shape, split sizes and a table of images per class.
pub fn summary(data: &Dataset) -> String {
    let shape = data.shape;
    let mut text = format!(
        "data {}: {}x{}x{} images (channels x height x width), {} classes, {} train / {} test, flips {}\n",
        data.name,
        shape.channels,
        shape.height,
        shape.width,
        data.classes,
        data.train.len(),
        data.test.len(),
        if data.horizontal_flip { "on" } else { "off" }
    );
    let train = counts(&data.train.labels, data.classes);
    let test = counts(&data.test.labels, data.classes);
    let width = data
        .class_names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 24);
    let row = |c: usize| {
        let name: String = data.class_names[c].chars().take(width).collect();
        format!("  {c:>3} {name:<width$} {:>7} {:>6}\n", train[c], test[c])
    };
    text.push_str(&format!(
        "  {:>3} {:<width$} {:>7} {:>6}\n",
        "#", "class", "train", "test"
    ));
    if data.classes <= FULL_TABLE {
        (0..data.classes).for_each(|c| text.push_str(&row(c)));
    } else {
        let mut order: Vec<usize> = (0..data.classes).collect();
        order.sort_by_key(|&c| (train[c], c));
        for &c in order.iter().take(3) {
            text.push_str(&row(c));
        }
        text.push_str(&format!("  … {} more classes …\n", data.classes - 6));
        for &c in order.iter().skip(data.classes - 3) {
            text.push_str(&row(c));
        }
    }
    text
}
