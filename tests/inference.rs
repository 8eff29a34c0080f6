//! The trained model used from outside: `predict` on image files, `eval` on labelled data, their refusals, and
//! the PyTorch package (python/) and the ONNX route into PyTorch checked against our own outputs.

mod common;

use common::{fails, path, python, scratch, spidernet, succeeds, turn};
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use spidernet::data::{self, DataSource, Digits};
use spidernet::inference::TrainedModel;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Kind, Tensor};

/// One small trained run shared by every test here: a one-iteration search of a 4-channel R=1 network on the
/// digits, then 3 final epochs.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let _turn = turn();
        let run = scratch("inference-run").join("run");
        let settings = "--reductions 1 --channels 4 --iterations 1 --epochs-per-iteration 1 --search-samples 200 \
                        --final-epochs 3";
        let mut args = vec!["search", "--out", path(&run)];
        args.extend(settings.split_whitespace());
        succeeds(&args);
        run
    })
}

/// The first `count` digits test images as 8-bit grayscale images.
fn digit_images(count: usize) -> Vec<GrayImage> {
    let raw = Digits::default().read(0).unwrap();
    (0..count as i64)
        .map(|i| {
            let pixels = (raw.test_images.get(i).get(0) * 255.0).round().to_kind(Kind::Uint8);
            GrayImage::from_raw(8, 8, Vec::<u8>::try_from(pixels.flatten(0, -1)).unwrap()).unwrap()
        })
        .collect()
}

/// What the library's model says of `image` (already the network's size): (top class, its probability).
fn expected(model: &TrainedModel, image: &DynamicImage) -> (usize, f64) {
    let raw = data::to_tensor(std::slice::from_ref(image), 1, (8, 8));
    let probabilities = model.logits_of_raw(&raw).softmax(-1, Kind::Double);
    let (value, index) = probabilities.max_dim(-1, false);
    (index.int64_value(&[0]) as usize, value.double_value(&[0]))
}

/// The (label, top class, its probability) of every line `predict --json` printed for a classified image.
fn predictions(json_lines: &str) -> Vec<(String, usize, f64)> {
    json_lines
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|value| value.get("predictions").is_some())
        .map(|value| {
            let top = &value["predictions"][0];
            let label = value["input"].as_str().unwrap().to_string();
            (
                label,
                top["class"].as_u64().unwrap() as usize,
                top["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn write_idx(file: &Path, images: &[GrayImage]) {
    let mut bytes = vec![0, 0, 8, 3];
    for dim in [images.len() as u32, 8, 8] {
        bytes.extend(dim.to_be_bytes());
    }
    for image in images {
        bytes.extend(image.as_raw());
    }
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn predict_classifies_png_jpeg_folders_and_idx_files_as_the_library_does() {
    let run = trained_run();
    let _turn = turn();
    let dir = scratch("predict-kinds");
    let model = TrainedModel::load(run, tch::Device::Cpu).unwrap();
    let digits = digit_images(12);
    let folder = dir.join("folder");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    for (k, image) in digits[..3].iter().enumerate() {
        image.save(folder.join(format!("{k}.png"))).unwrap();
    }
    digits[3]
        .save_with_format(folder.join("sub/3.jpg"), ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    std::fs::write(folder.join(".hidden.png"), "skipped").unwrap();
    let single = dir.join("single.png");
    digits[4].save(&single).unwrap();
    let idx = dir.join("test-images.idx");
    write_idx(&idx, &digits[5..12]);

    let out = succeeds(&["predict", path(run), path(&single), path(&folder), path(&idx), "--json"]);
    let found = predictions(&out);
    let mut labels = vec![single.display().to_string()];
    labels.extend(["0.png", "1.png", "2.png", "sub/3.jpg"].map(|f| folder.join(f).display().to_string()));
    labels.extend((0..7).map(|i| format!("{}[{i}]", idx.display())));
    assert_eq!(found.iter().map(|f| f.0.clone()).collect::<Vec<_>>(), labels);
    let jpeg = image::open(folder.join("sub/3.jpg")).unwrap();
    let mut images: Vec<DynamicImage> = vec![DynamicImage::ImageLuma8(digits[4].clone())];
    images.extend(digits[..3].iter().cloned().map(DynamicImage::ImageLuma8));
    images.push(jpeg);
    images.extend(digits[5..12].iter().cloned().map(DynamicImage::ImageLuma8));
    for ((label, class, probability), image) in found.iter().zip(&images) {
        let (want_class, want_probability) = expected(&model, image);
        assert_eq!(*class, want_class, "{label}");
        assert!(
            (probability - want_probability).abs() < 1e-6,
            "{label}: {probability} vs {want_probability}"
        );
    }

    let text = succeeds(&["predict", path(run), path(&single), "--top", "2"]);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{text}");
    assert_eq!(words[0], single.display().to_string());
    let first: f64 = words[2].trim_end_matches('%').parse().unwrap();
    let second: f64 = words[4].trim_end_matches('%').parse().unwrap();
    assert!(first >= second && first + second <= 100.05, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predict_refuses_a_wrong_size_unless_asked_and_reports_a_corrupt_file_among_good_ones() {
    let run = trained_run();
    let _turn = turn();
    let dir = scratch("predict-bad");
    let model = TrainedModel::load(run, tch::Device::Cpu).unwrap();
    let digits = digit_images(2);
    let good = dir.join("good.png");
    digits[0].save(&good).unwrap();
    let large = DynamicImage::ImageLuma8(digits[1].clone()).resize_exact(16, 12, image::imageops::FilterType::Nearest);
    let wrong_size = dir.join("large.png");
    large.save(&wrong_size).unwrap();
    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let colour = dir.join("colour.png");
    DynamicImage::ImageRgb8(RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 30) as u8, 90])
    }))
    .save(&colour)
    .unwrap();

    let output = spidernet(&[
        "predict",
        path(run),
        path(&good),
        path(&wrong_size),
        path(&corrupt),
        path(&colour),
    ]);
    assert_eq!(output.status.code(), Some(1), "an unreadable input fails the command");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the good image and the colour one are classified: {stdout}"
    );
    assert!(lines[0].starts_with(&good.display().to_string()) && lines[1].starts_with(&colour.display().to_string()));
    assert!(
        stderr.contains(&format!(
            "{} is 12x16 pixels, but the network takes 8x8 (height x width); pass --resize",
            wrong_size.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: not a decodable PNG or JPEG image: ", corrupt.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("classified 2 image(s)") && stderr.contains("2 could not be read"),
        "{stderr}"
    );

    let resized = succeeds(&["predict", path(run), path(&wrong_size), "--resize", "--json"]);
    let (_, class, probability) = predictions(&resized)[0].clone();
    let (want_class, want_probability) = expected(&model, &data::resized(&large, (8, 8)));
    assert_eq!(class, want_class);
    assert!((probability - want_probability).abs() < 1e-6);
    let missing = fails(&["predict", path(run), path(&dir.join("nowhere.png"))]);
    assert!(missing.contains("nowhere.png: no such file or folder"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_on_the_runs_own_data_reproduces_its_summary() {
    let run = trained_run();
    let _turn = turn();
    let dir = scratch("eval-own");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let svg = dir.join("confusion.svg");
    let outputs = dir.join("outputs.safetensors");
    let json = succeeds(&[
        "eval",
        path(run),
        "--json",
        "--svg",
        path(&svg),
        "--outputs",
        path(&outputs),
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let (images, correct) = (report["images"].as_u64().unwrap(), report["correct"].as_u64().unwrap());
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert_eq!(correct, (accuracy * images as f64).round() as u64, "{json}");
    assert!((report["accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-12);
    assert!((report["loss"].as_f64().unwrap() - summary["test_loss"].as_f64().unwrap()).abs() < 1e-5);
    let confusion: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    assert_eq!(confusion.len(), 10);
    assert_eq!(confusion.iter().flatten().sum::<u64>(), images);
    assert_eq!((0..10).map(|c| confusion[c][c]).sum::<u64>(), correct);
    for (c, class) in report["per_class"].as_array().unwrap().iter().enumerate() {
        assert_eq!(class["images"].as_u64().unwrap(), confusion[c].iter().sum::<u64>());
        assert_eq!(class["name"].as_str().unwrap(), c.to_string());
    }
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(saved, report, "eval.json holds the report");
    let tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(&outputs).unwrap();
    let shapes: Vec<(String, Vec<i64>)> = tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let n = images as i64;
    for (name, shape) in [
        ("images", vec![n, 1, 8, 8]),
        ("labels", vec![n]),
        ("logits", vec![n, 10]),
    ] {
        assert!(
            shapes.contains(&(name.to_string(), shape.clone())),
            "{name} {shape:?} in {shapes:?}"
        );
    }
    let text = succeeds(&["eval", path(run), "--no-save"]);
    assert!(
        text.contains(&format!("accuracy {:.2}% ({correct}/{images})", 100.0 * accuracy)),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_refuses_data_the_network_does_not_take_naming_both() {
    let run = trained_run();
    let _turn = turn();
    let dir = scratch("eval-mismatch");
    for class in ["red", "green", "blue"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for k in 0..3u8 {
            RgbImage::from_pixel(8, 8, image::Rgb([k * 40, 80, 120]))
                .save(dir.join(class).join(format!("{k}.png")))
                .unwrap();
        }
    }
    let spec = format!("folder:{}", dir.display());
    let error = fails(&["eval", path(run), "--data", &spec]);
    assert!(
        error.contains(&format!(
            "{} cannot be evaluated on --data {spec}",
            run.join("genotype.json").display()
        )),
        "{error}"
    );
    assert!(
        error.contains("takes 1x8x8 images in 10 classes") && error.contains("has 3x8x8 in 3"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_unfinished_or_inconsistent_run_folder_is_named() {
    let run = trained_run();
    let dir = scratch("inference-bad-runs");
    let missing = fails(&["eval", path(&dir.join("absent"))]);
    assert!(missing.contains("absent is not a run folder"), "{missing}");

    let unfinished = dir.join("unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::copy(run.join("genotype.json"), unfinished.join("genotype.json")).unwrap();
    let error = fails(&["predict", path(&unfinished), path(&run.join("genotype.json"))]);
    assert!(
        error.contains("has no weights.safetensors: the run has no trained network"),
        "{error}"
    );

    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    for file in ["weights.safetensors", "normalization.json"] {
        std::fs::copy(run.join(file), other.join(file)).unwrap();
    }
    let genotype = spidernet::genotype::Genotype::minimal(1, 4, spidernet::genotype::InputShape::new(1, 8, 8), 10);
    std::fs::write(other.join("genotype.json"), genotype.unwrap().to_json()).unwrap();
    let error = fails(&["eval", path(&other)]);
    assert!(
        error.contains(&format!(
            "{} does not match {}",
            other.join("weights.safetensors").display(),
            other.join("genotype.json").display()
        )),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs a check script of python/tests with the venv's Python; it must succeed. Returns its stdout.
fn python_check(script: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/tests").join(script);
    let output = std::process::Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{}: {stdout}\n{stderr}", script.display());
    stdout.into_owned()
}

#[test]
fn the_pytorch_package_builds_the_dense_op_set_and_gives_our_logits() {
    let _turn = turn();
    let dir = scratch("pytorch-dense");
    let run = dir.join("run");
    // No search: the minimal genotype keeps every dense op for its final training.
    let settings = "--ops dense --strategy none --reductions 1 --channels 4 --final-epochs 2";
    let mut args = vec!["search", "--out", path(&run)];
    args.extend(settings.split_whitespace());
    succeeds(&args);
    let genotype = spidernet::genotype::Genotype::load(&run.join("genotype.json")).unwrap();
    let ops: Vec<&str> = genotype
        .cells
        .iter()
        .flat_map(|c| &c.edges)
        .flat_map(|e| &e.ops)
        .map(|o| o.name())
        .collect();
    assert!(ops.iter().any(|op| op.starts_with("conv_")), "{ops:?}");
    assert!(
        ops.iter().all(|op| !op.starts_with("sep_") && !op.starts_with("dil_")),
        "{ops:?}"
    );
    let outputs = dir.join("outputs.safetensors");
    succeeds(&["eval", path(&run), "--outputs", path(&outputs), "--no-save"]);
    let checked = python_check("check_run.py", &[path(&run), path(&outputs)]);
    assert!(checked.contains("{\"check\": \"logits\""), "{checked}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pytorch_package_gives_our_logits_and_accuracy_and_trains() {
    let run = trained_run();
    let _turn = turn();
    let dir = scratch("pytorch-package");
    let outputs = dir.join("outputs.safetensors");
    succeeds(&["eval", path(run), "--outputs", path(&outputs), "--no-save"]);
    let checked = python_check("check_run.py", &[path(run), path(&outputs)]);
    for check in ["logits", "accuracy", "names", "training", "errors"] {
        assert!(
            checked.contains(&format!("{{\"check\": \"{check}\"")),
            "{check} did not run: {checked}"
        );
    }
    let onnx = dir.join("model.onnx");
    succeeds(&["export", path(run), "--onnx", path(&onnx)]);
    let route = python_check("check_onnx_route.py", &[path(&onnx)]);
    assert!(route.contains("onnx2torch agrees with onnxruntime"), "{route}");
    let _ = std::fs::remove_dir_all(&dir);
}
