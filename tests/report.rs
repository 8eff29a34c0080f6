//! The HTML report: built from hand-written run folders, so every number it shows is known in advance.

mod common;

use common::scratch;
use spidernet::genotype::{Genotype, InputShape};
use spidernet::inference::{ClassResult, EvalReport};
use spidernet::memory::MemoryEstimate;
use spidernet::metrics::{CandidateReport, CellDecision, SkippedCandidate};
use spidernet::report::write_report;
use spidernet::search::{Checkpoint, IterationRecord, Mutation, Profile, RunDir, SearchConfig, Strategy, Summary};
use std::path::Path;

fn candidate(cell: usize, edge: u32, r_ntk: f64, r_lrc: f64, score: Option<f64>) -> CandidateReport {
    CandidateReport {
        cell,
        edge,
        from: 0,
        to: 1,
        repeats: Vec::new(),
        r_ntk,
        r_lrc,
        signals: Default::default(),
        rejection: (r_ntk > 0.0 || r_lrc <= 0.0).then(|| "rejected".to_string()),
        score,
        seconds: 1.0,
    }
}

fn record(iteration: usize, accuracy: Option<f64>, strategy: Strategy) -> IterationRecord {
    let scored = strategy == Strategy::Spidernet && iteration == 1;
    IterationRecord {
        iteration,
        validation_accuracy: accuracy,
        validation_loss: accuracy.map(|a| 1.0 - a),
        train_loss: None,
        deadheaded: Vec::new(),
        pruned_share: (iteration > 0).then_some(0.25),
        parameters: 1000 * (iteration + 1),
        memory: MemoryEstimate {
            activations: (iteration as u64 + 1) << 20,
            ..MemoryEstimate::default()
        },
        memory_budget: 8 << 20,
        live_ops: 20 + 7 * iteration,
        edges_per_cell: vec![2 + iteration, 3 + iteration, 3],
        decisions: if scored {
            vec![CellDecision {
                cell: 0,
                tried: vec![
                    candidate(0, 1, -0.25, 0.125, Some(0.0)),
                    candidate(0, 2, 0.5, 0.0625, None),
                ],
                skipped: Vec::new(),
                chosen: Some(1),
            }]
        } else {
            Vec::new()
        },
        mutations: if iteration == 1 {
            vec![
                Mutation {
                    cell: 0,
                    edge: 1,
                    from: 0,
                    to: 1,
                    estimated_bytes: 3 << 20,
                    applied: true,
                    time: Some(spidernet::search::time_cost::weigh(0.010, 0.011, Some(20), 0.002)),
                },
                Mutation {
                    cell: 1,
                    edge: 0,
                    from: 0,
                    to: 2,
                    estimated_bytes: 99 << 20,
                    applied: false,
                    time: None,
                },
            ]
        } else {
            Vec::new()
        },
        training_seconds: 10.0 * iteration as f64,
        scoring_seconds: if strategy == Strategy::Spidernet { 5.0 } else { 0.0 },
        train_images_per_second: (iteration > 0).then_some(120.0),
        gate_open: Vec::new(),
        plans: Vec::new(),
    }
}

/// Writes a finished run folder with three iterations (0, 1, 2) and the given test accuracy.
fn run_folder(root: &Path, data: &str, strategy: Strategy, accuracies: [f64; 2], test_accuracy: f64) {
    let mut config = SearchConfig::new(Profile::Quick, data, 2, 16, 0);
    config.strategy = strategy;
    config.memory_budget = 8 << 20;
    let genotype = Genotype::minimal(2, 16, InputShape::new(1, 8, 8), 10).unwrap();
    let dir = RunDir::create(root, &config, &Checkpoint::start(genotype.clone(), 0)).unwrap();
    let history = vec![
        record(0, None, strategy),
        record(1, Some(accuracies[0]), strategy),
        record(2, Some(accuracies[1]), strategy),
    ];
    let mut checkpoint = Checkpoint::start(genotype.clone(), 0);
    checkpoint.completed = history.len();
    checkpoint.stopped = Some("reached 2 iterations".into());
    dir.commit(&history, &checkpoint).unwrap();
    dir.save_summary(&Summary {
        stopped: "reached 2 iterations".into(),
        iterations: 2,
        live_ops: genotype.live_op_count(),
        edges_per_cell: genotype.cells.iter().map(|c| c.edges.len()).collect(),
        parameters: 4321,
        estimated_memory_bytes: 3 << 20,
        test_accuracy: Some(test_accuracy),
        test_loss: Some(0.5),
        search_training_seconds: 30.0,
        search_scoring_seconds: 15.0,
        final_training_seconds: 40.0,
        final_training_samples: 1000,
        final_training_peak_rss_bytes: None,
        final_training_peak_device_bytes: None,
        final_epochs: 3,
        run_seconds: 85.0,
        final_train_images_per_second: Some(75.0),
    })
    .unwrap();
}

/// The SVG documents of the page, in order.
fn svgs(page: &str) -> Vec<&str> {
    page.match_indices("<svg")
        .map(|(start, _)| {
            let end = start + page[start..].find("</svg>").unwrap();
            &page[start..end]
        })
        .collect()
}

#[test]
fn the_report_shows_the_runs_numbers_in_one_self_contained_file() {
    let root = scratch("report");
    let run = root.join("spidernet-run");
    run_folder(&run, "digits", Strategy::Spidernet, [0.5, 0.625], 0.8765);
    let out = root.join("out/report.html");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    write_report(&run, None, &out, Some(&root.join("charts"))).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();

    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(page.contains("test accuracy 87.65 %"), "headline");
    for forbidden in ["<script", "<link", "src=", "@import", "url(http"] {
        assert!(
            !page.contains(forbidden),
            "the page must not load anything: found {forbidden}"
        );
    }
    assert_eq!(
        page.matches("http").count(),
        page.matches("http://www.w3.org/").count(),
        "the only URLs are XML namespaces"
    );
    // Six line and bar charts, the candidates chart, and the cells.
    let drawings = svgs(&page);
    assert_eq!(drawings.len(), 8);
    assert!(drawings[0].contains("Validation accuracy"));
    assert_eq!(
        drawings[0].matches("<circle").count(),
        2,
        "one marker per trained iteration"
    );
    assert_eq!(
        drawings[1].matches("<circle").count(),
        3,
        "parameters at iterations 0, 1, 2"
    );
    assert!(drawings[2].contains("budget of spidernet (seed 0)"), "the budget line");
    assert!(drawings[5].contains("training") && drawings[5].contains("scoring"));
    assert!(drawings[6].contains("Scored candidates"));
    assert_eq!(
        drawings[6].matches("<circle").count(),
        2 + 3,
        "two candidates plus three legend markers"
    );
    assert!(drawings[7].contains("class=\"cells\""), "the final cells come last");
    let chart = std::fs::read_to_string(root.join("charts/validation-accuracy.svg")).unwrap();
    assert_eq!(
        chart.trim_end(),
        format!("{}</svg>", drawings[0]),
        "the chart files hold the page's charts"
    );

    // The chosen split with its ratios, and the one refused for memory.
    assert!(
        page.contains("<td>-0.2500</td><td>+0.1250</td>"),
        "r_ntk and r_lrc of the chosen split"
    );
    assert!(page.contains("1 of 2"), "one of the two candidates was accepted");
    assert!(
        page.contains("<td>0 (25 %)</td>"),
        "the share of ops pruned in an iteration"
    );
    assert!(page.contains("refused: over the memory budget"));
    // The timed split's cost against its expected gain, in its row and in its decision's story.
    let cost = "+10.0 % time per image, 20 → 18.2 final epochs: costs 0.13 points, expected to add 0.20";
    assert_eq!(page.matches(cost).count(), 2, "{cost}");
    assert!(page.contains("worth it."));
    assert!(page.contains("62.50 %"), "validation accuracy of iteration 2");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_compared_run_is_overlaid_and_runs_on_other_data_are_refused() {
    let root = scratch("report-compare");
    let (run, random, other_data) = (root.join("a"), root.join("b"), root.join("c"));
    run_folder(&run, "digits", Strategy::Spidernet, [0.5, 0.625], 0.8765);
    run_folder(&random, "digits", Strategy::Random, [0.375, 0.5], 0.75);
    run_folder(&other_data, "fashion-mnist", Strategy::Random, [0.375, 0.5], 0.75);
    let out = root.join("report.html");
    write_report(&run, Some(&random), &out, None).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    let drawings = svgs(&page);
    assert_eq!(
        drawings[0].matches("<circle").count(),
        4,
        "both runs' trained iterations"
    );
    assert!(drawings[0].contains("random (seed 0)") && drawings[0].contains("spidernet (seed 0)"));
    assert!(
        page.contains("<td>87.65 %</td><td>75.00 %</td>"),
        "test accuracies side by side"
    );

    let error = format!("{:#}", write_report(&run, Some(&other_data), &out, None).unwrap_err());
    assert!(
        error.contains("fashion-mnist")
            && error.contains("same data")
            && error.contains(&*other_data.to_string_lossy()),
        "{error}"
    );
    let error = format!(
        "{:#}",
        write_report(&root.join("missing"), None, &out, None).unwrap_err()
    );
    assert!(
        error.contains("missing") && error.contains("not a run folder"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn text_from_the_run_is_escaped() {
    let root = scratch("report-escape");
    let run = root.join("run");
    run_folder(
        &run,
        "folder:/data/<b>cats&dogs</b>",
        Strategy::Spidernet,
        [0.5, 0.625],
        0.8765,
    );
    let out = root.join("report.html");
    write_report(&run, None, &out, None).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("folder:/data/&lt;b&gt;cats&amp;dogs&lt;/b&gt;"));
    assert!(!page.contains("<b>cats"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_budget_far_above_the_estimates_is_named_instead_of_drawn() {
    let root = scratch("report-budget");
    let run = root.join("run");
    run_folder(&run, "digits", Strategy::Spidernet, [0.5, 0.625], 0.8765);
    let config_path = run.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["memory_budget"] = serde_json::json!(1u64 << 30);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = root.join("report.html");
    write_report(&run, None, &out, None).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    let memory = svgs(&page)[2];
    assert!(memory.contains("budget 1.0 GiB, off the scale"), "{memory}");
    assert!(!memory.contains("budget of"), "no budget line");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_report_explains_each_decision_and_shows_the_evaluation() {
    let root = scratch("report-decisions");
    let run = root.join("run");
    run_folder(&run, "digits", Strategy::Spidernet, [0.5, 0.625], 0.8765);
    let dir = RunDir::open(&run).unwrap().0;
    let mut history = dir.history().unwrap();
    history[1].decisions[0]
        .tried
        .push(candidate(0, 5, -0.125, 0.25, Some(0.75)));
    history[1].decisions[0].skipped.push(SkippedCandidate {
        cell: 0,
        edge: 7,
        from: 1,
        to: 2,
        reason: "out of memory".into(),
        ntk_copies: 4,
        ntk_copies_after: 2,
        seconds: 0.5,
    });
    history[2].decisions = vec![CellDecision {
        cell: 1,
        tried: vec![candidate(1, 3, 0.5, 0.25, None)],
        skipped: Vec::new(),
        chosen: None,
    }];
    dir.save_history(&history).unwrap();
    let evaluation = EvalReport {
        data: "digits".into(),
        split: "test".into(),
        images: 4,
        correct: 3,
        accuracy: 0.75,
        loss: 0.5,
        per_class: (0..2)
            .map(|class| ClassResult {
                class,
                name: format!("class <{class}>"),
                images: 2,
                correct: 2 - class,
                accuracy: Some(1.0 - 0.5 * class as f64),
            })
            .collect(),
        confusion: vec![vec![2, 0], vec![1, 1]],
    };
    evaluation.save(&run).unwrap();
    let out = root.join("report.html");
    write_report(&run, None, &out, None).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();

    let why = &page[page.find("<h2>Why each split won</h2>").unwrap()..page.find("<h2>Iterations</h2>").unwrap()];
    assert!(
        why.contains(
            "Iteration 1, cell 0: Split edge 1 (0 → 1): κ changes by -25.0 % and the linear regions by +12.5 % \
             (r_ntk -0.2500, r_lrc +0.1250). Of 2 accepted candidates it has the lowest combined score, 0.000; the \
             runner-up, edge 5 (0 → 1), scores 0.750 (r_ntk -0.1250, r_lrc +0.2500)."
        ),
        "{why}"
    );
    assert!(
        why.contains("<td>rejected: rejected</td>"),
        "the rejected candidate and its reason"
    );
    assert!(
        why.contains("<td>skipped: out of memory</td>"),
        "the skipped candidate and its reason"
    );
    assert!(why.contains("<tr class=\"chosen\"><td class=\"text\">edge 1 (0 → 1)</td>"));
    assert!(why.contains("Iteration 2, cell 1: No split: none of the 1 candidates tried was accepted"));

    let evaluated = &page[page.find("<h2>Evaluation</h2>").unwrap()..page.find("<h2>Final cells</h2>").unwrap()];
    assert!(evaluated.contains("digits (test split): 3 of 4 images correct, 75.00 %, loss 0.5000."));
    assert!(
        evaluated.contains("true class &lt;1&gt;, predicted class &lt;0&gt;: 1"),
        "{evaluated}"
    );
    assert!(!page.contains("class <1>"), "class names are escaped");
    let _ = std::fs::remove_dir_all(&root);
}
