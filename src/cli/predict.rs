//! `spidernet predict`: classify image files with a run's trained network.

use super::Exit;
use super::args::{DeviceChoice, positive, print_ignoring_closed_pipe};
use clap::Args;
use image::DynamicImage;
use spidernet::data;
use spidernet::inference::{ImageInputs, Input, SizeRule, TrainedModel};
use std::path::PathBuf;
use std::time::Instant;
use tch::Kind;

#[derive(Args)]
pub struct PredictArgs {
    /// A run folder holding a trained network (from `search`, or `train --out`).
    run: PathBuf,
    /// PNG or JPEG files, folders of them (subfolders included), or IDX image files (gzipped or not).
    #[arg(required = true, value_name = "FILE|DIR")]
    inputs: Vec<PathBuf>,
    /// Classes to print per image, the most probable first.
    #[arg(long, default_value_t = 3, value_parser = positive)]
    top: usize,
    /// Resize images whose size is not the network's, as --image-size resizes folder: data. Without it they are
    /// refused, unless the run itself resized its images.
    #[arg(long)]
    resize: bool,
    /// Print one JSON object per image (JSON Lines) instead of text.
    #[arg(long)]
    json: bool,
    /// Device to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

/// The `top` most probable classes of one image: (class, probability).
type Ranking = Vec<(usize, f64)>;

/// Classifies the images that decoded, in order; the others keep their error.
fn classify(
    model: &TrainedModel,
    prepared: Vec<anyhow::Result<DynamicImage>>,
    top: usize,
) -> Vec<anyhow::Result<Ranking>> {
    let (mut images, mut outcomes) = (Vec::new(), Vec::new());
    for item in prepared {
        match item {
            Ok(image) => {
                images.push(image);
                outcomes.push(None);
            }
            Err(error) => outcomes.push(Some(Err(error))),
        }
    }
    let mut rankings = Vec::new();
    if !images.is_empty() {
        let input = model.input();
        let raw = data::to_tensor(&images, input.channels, (input.height, input.width));
        let probabilities = model.logits_of_raw(&raw).softmax(-1, Kind::Float);
        let (values, indices) = probabilities.topk(top as i64, -1, true, true);
        let values = Vec::<Vec<f64>>::try_from(values.to_kind(Kind::Double)).unwrap_or_default();
        let indices = Vec::<Vec<i64>>::try_from(indices).unwrap_or_default();
        rankings = values
            .into_iter()
            .zip(indices)
            .map(|(v, i)| i.into_iter().map(|c| c as usize).zip(v).collect())
            .collect();
    }
    let mut rankings = rankings.into_iter();
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Ok(rankings.next().expect("one ranking per decoded image"))))
        .collect()
}

fn text_line(label: &str, ranking: &Ranking, names: &[String]) -> String {
    let classes: Vec<String> = ranking
        .iter()
        .map(|(c, p)| format!("{} {:.1}%", names[*c], 100.0 * p))
        .collect();
    format!("{label}  {}\n", classes.join("  "))
}

fn json_line(label: &str, outcome: &anyhow::Result<Ranking>, names: &[String]) -> String {
    let value = match outcome {
        Ok(ranking) => serde_json::json!({
            "input": label,
            "predictions": ranking
                .iter()
                .map(|(c, p)| serde_json::json!({"class": c, "name": names[*c], "probability": p}))
                .collect::<Vec<_>>(),
        }),
        Err(error) => serde_json::json!({"input": label, "error": format!("{error:#}")}),
    };
    value.to_string() + "\n"
}

/// Classifies every input in batches, printing each batch as it is done; exits with status 1 when an input could
/// not be classified (each is reported on stderr, and in the JSON output).
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let model = TrainedModel::load(&args.run, args.device.device()?)?;
    let rule = SizeRule {
        shape: model.input(),
        resize: args.resize || model.image_size().is_some(),
    };
    let inputs = ImageInputs::collect(&args.inputs).inputs;
    let top = args.top.min(model.class_names().len());
    let (start, mut failed) = (Instant::now(), 0);
    for chunk in inputs.chunks(model.batch_size()) {
        let prepared = chunk
            .iter()
            .map(|input: &Input| input.decode().and_then(|image| rule.fit(image, &input.label())))
            .collect();
        let mut text = String::new();
        for (input, outcome) in chunk.iter().zip(classify(&model, prepared, top)) {
            let label = input.label();
            if args.json {
                text.push_str(&json_line(&label, &outcome, model.class_names()));
            }
            match outcome {
                Ok(ranking) if !args.json => text.push_str(&text_line(&label, &ranking, model.class_names())),
                Ok(_) => {}
                Err(error) => {
                    failed += 1;
                    eprintln!("error: {error:#}");
                }
            }
        }
        print_ignoring_closed_pipe(&text)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let classified = inputs.len() - failed;
    eprintln!(
        "classified {classified} image(s) in {seconds:.1}s ({:.0} images/s){}",
        classified as f64 / seconds.max(1e-9),
        if failed > 0 {
            format!("; {failed} could not be read")
        } else {
            String::new()
        }
    );
    if failed > 0 {
        return Err(Exit { code: 1 }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line_names_classes_with_percentages() {
        let names = vec!["cat".to_string(), "dog".to_string()];
        assert_eq!(
            text_line("a.png", &vec![(1, 0.75), (0, 0.25)], &names),
            "a.png  dog 75.0%  cat 25.0%\n"
        );
        let error = json_line("b.png", &Err(anyhow::anyhow!("b.png: broken")), &names);
        assert_eq!(error, "{\"error\":\"b.png: broken\",\"input\":\"b.png\"}\n");
    }
}
