//! Why each split won: for every cell decision of the search, the chosen candidate's ratios and score, the
//! runner-up, and every rejected or skipped candidate with its reason (docs/ALGORITHM.md §7).

use super::RunRecord;
use super::html::{escape, table};
use crate::memory::format_size;
use crate::metrics::{CandidateReport, CellDecision};
use crate::search::Mutation;
use std::fmt::Write;

fn ratios(report: &CandidateReport) -> String {
    format!("r_ntk {:+.4}, r_lrc {:+.4}", report.r_ntk, report.r_lrc)
}

fn split_name(report: &CandidateReport) -> String {
    format!("edge {} ({} → {})", report.edge, report.from, report.to)
}

/// The accepted candidates other than the chosen one, best score first.
fn runners_up(decision: &CellDecision) -> Vec<&CandidateReport> {
    let mut others: Vec<&CandidateReport> = (decision.tried.iter())
        .filter(|r| r.accepted() && decision.chosen != Some(r.edge))
        .collect();
    others.sort_by(|a, b| {
        a.score
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.score.unwrap_or(f64::INFINITY))
    });
    others
}

/// One sentence on why the decision went the way it did.
fn explanation(decision: &CellDecision, mutation: Option<&Mutation>) -> String {
    let accepted = decision.tried.iter().filter(|r| r.accepted()).count();
    let Some(chosen) = decision
        .chosen
        .and_then(|edge| decision.tried.iter().find(|r| r.edge == edge))
    else {
        return format!(
            "No split: none of the {} candidates tried was accepted (κ must not rise and the linear regions must grow).",
            decision.tried.len()
        );
    };
    let mut text = format!(
        "Split {}: κ changes by {:+.1} % and the linear regions by {:+.1} % ({}).",
        split_name(chosen),
        100.0 * chosen.r_ntk,
        100.0 * chosen.r_lrc,
        ratios(chosen)
    );
    match runners_up(decision).first() {
        Some(second) if second.score == chosen.score => {
            let _ = write!(
                text,
                " Of {accepted} accepted candidates it ties for the lowest combined score, {:.3}, with {} ({}), and \
                 was tried first.",
                chosen.score.unwrap_or(f64::NAN),
                split_name(second),
                ratios(second)
            );
        }
        Some(second) => {
            let _ = write!(
                text,
                " Of {accepted} accepted candidates it has the lowest combined score, {:.3}; the runner-up, {}, \
                 scores {:.3} ({}).",
                chosen.score.unwrap_or(f64::NAN),
                split_name(second),
                second.score.unwrap_or(f64::NAN),
                ratios(second)
            );
        }
        None => text.push_str(" It is the only accepted candidate."),
    }
    if let Some(time) = mutation.and_then(|m| m.time.as_ref()) {
        let verdict = if time.worth {
            "worth it"
        } else {
            "not worth it, so it was not applied"
        };
        let _ = write!(text, " Its time: {}; {verdict}.", time.describe());
    } else if let Some(mutation) = mutation.filter(|m| !m.applied) {
        let _ = write!(
            text,
            " It was not applied: the network would need {}, over the memory budget.",
            format_size(mutation.estimated_bytes)
        );
    }
    text
}

/// Every candidate of the decision, in the order tried, with its verdict.
fn candidates_table(decision: &CellDecision) -> String {
    let mut rows = Vec::new();
    let mut classes = Vec::new();
    for report in &decision.tried {
        let chosen = decision.chosen == Some(report.edge);
        rows.push(vec![
            split_name(report),
            format!("{:+.4}", report.r_ntk),
            format!("{:+.4}", report.r_lrc),
            report.score.map_or("—".into(), |s| format!("{s:.3}")),
            match &report.rejection {
                None if chosen => "chosen".to_string(),
                None => "accepted, higher score".to_string(),
                Some(reason) => format!("rejected: {reason}"),
            },
        ]);
        classes.push(if chosen {
            "chosen"
        } else if report.accepted() {
            ""
        } else {
            "refused"
        });
    }
    for skipped in &decision.skipped {
        rows.push(vec![
            format!("edge {} ({} → {})", skipped.edge, skipped.from, skipped.to),
            "—".into(),
            "—".into(),
            "—".into(),
            format!("skipped: {}", skipped.reason),
        ]);
        classes.push("refused");
    }
    table(&["candidate", "r_ntk", "r_lrc", "score", "verdict"], &rows, &classes)
}

/// The section: one collapsible block per scored cell decision, its sentence as the summary.
pub fn decisions_section(run: &RunRecord) -> String {
    let mut text = String::from(
        "<p>Each cell's candidates are walked in a seeded order until 3 are accepted (κ does not rise, r_ntk ≤ 0, \
         and the linear regions grow, r_lrc &gt; 0). Among the accepted, each ratio is min-max normalised and the \
         split with the lowest mean of normalised r_ntk and 1 − normalised r_lrc wins.</p>\n",
    );
    let mut any = false;
    for record in &run.history {
        for decision in record
            .decisions
            .iter()
            .filter(|d| !d.tried.is_empty() || !d.skipped.is_empty())
        {
            any = true;
            let mutation = record.mutations.iter().find(|m| m.cell == decision.cell);
            let _ = write!(
                text,
                "<details>\n<summary>Iteration {}, cell {}: {}</summary>\n{}</details>\n",
                record.iteration,
                decision.cell,
                escape(&explanation(decision, mutation)),
                candidates_table(decision)
            );
        }
    }
    if !any {
        text.push_str("<p>No candidate was scored (a random or unchanged strategy).</p>\n");
    }
    text
}
