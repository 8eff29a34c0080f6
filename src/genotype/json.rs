//! JSON text and file storage of genotypes.

use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::cell::Cell;
use super::edge::Edge;
use super::error::GenotypeError;
use super::network::Genotype;

impl Genotype {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genotype fields always serialize to JSON")
    }

    /// Parses JSON and validates the result; errors name the offending cell and edge where possible.
    pub fn from_json(text: &str) -> Result<Genotype, GenotypeError> {
        let genotype: Genotype = serde_json::from_str(text).map_err(|source| GenotypeError::Json {
            location: locate_bad_part(text),
            source,
        })?;
        genotype.check()?;
        Ok(genotype)
    }

    /// Reads and validates a genotype file.
    pub fn load(path: &Path) -> Result<Genotype, GenotypeError> {
        let text = fs::read_to_string(path).map_err(|source| GenotypeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Genotype::from_json(&text).map_err(|source| GenotypeError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Validates, then writes atomically: a temporary file in the same directory is renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), GenotypeError> {
        self.check().map_err(|source| GenotypeError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let write_error = |source| GenotypeError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text = self.to_json();
        text.push('\n');
        crate::system::atomic::write_atomic(path, text.as_bytes()).map_err(write_error)
    }
}

/// Finds the first cell, and within it the first edge, that does not deserialize on its own.
fn locate_bad_part(text: &str) -> Option<String> {
    let document: Value = serde_json::from_str(text).ok()?;
    let cells = document.get("cells")?.as_array()?;
    for (k, cell) in cells.iter().enumerate() {
        if Cell::deserialize(cell).is_ok() {
            continue;
        }
        let edges = cell.get("edges").and_then(Value::as_array);
        for (position, edge) in edges.into_iter().flatten().enumerate() {
            if Edge::deserialize(edge).is_err() {
                let id = edge
                    .get("id")
                    .and_then(Value::as_u64)
                    .map(|id| format!(", id {id}"))
                    .unwrap_or_default();
                return Some(format!("cell {k}, edge at position {position}{id}"));
            }
        }
        return Some(format!("cell {k}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::{InputShape, Op};

    fn sample() -> Genotype {
        let input = InputShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let mut genotype = Genotype::minimal(2, 8, input, 10).expect("valid settings");
        genotype.cells[1].split(0).expect("edge exists");
        genotype.cells[2].kill_op(3, Op::Identity).expect("op is live");
        genotype
    }

    /// An error and its causes as the command line prints them (`a: b: c`), each once.
    fn chain(error: &GenotypeError) -> String {
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(next) = cause {
            text = format!("{text}: {next}");
            cause = next.source();
        }
        text
    }

    /// Applies `edit` to the sample's JSON value and returns the from_json error message.
    fn error_after(edit: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(&sample().to_json()).expect("valid JSON");
        edit(&mut value);
        chain(&Genotype::from_json(&value.to_string()).expect_err("edited genotype is invalid"))
    }

    /// A fresh empty directory under the system temp dir.
    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("genotype-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    }

    #[test]
    fn json_round_trip() {
        let genotype = sample();
        let text = genotype.to_json();
        assert!(text.contains("\"sep_conv_3x3\""));
        assert!(text.contains('\n'), "pretty printed");
        let back = Genotype::from_json(&text).expect("round trip");
        assert_eq!(back, genotype);
    }

    #[test]
    fn rejects_backward_edge() {
        let message = error_after(|v| v["cells"][1]["edges"][1]["from"] = 4.into());
        assert!(
            message.starts_with("cell 1: edge 4 goes from node 4 to node 3"),
            "{message}"
        );
    }

    #[test]
    fn rejects_unknown_op_naming_cell_and_edge() {
        let message = error_after(|v| v["cells"][2]["edges"][1]["ops"][0] = "conv_9x9".into());
        assert!(message.contains("cell 2, edge at position 1, id 1"), "{message}");
        assert!(message.contains("unknown variant `conv_9x9`"), "{message}");
    }

    #[test]
    fn rejects_too_small_input() {
        let message = error_after(|v| {
            v["input"]["height"] = 3.into();
        });
        assert_eq!(
            message,
            "input 3x28 is too small for 2 reductions: each reduction halves the resolution, so at most 1 fit"
        );
    }

    #[test]
    fn rejects_wrong_cell_count() {
        let message = error_after(|v| v["reductions"] = 1.into());
        assert_eq!(message, "invalid genotype: 1 reductions need 2 cells, found 3");
    }

    #[test]
    fn rejects_malformed_and_misspelled_documents() {
        let err = Genotype::from_json("{ \"format\": 1, ").expect_err("truncated");
        let message = chain(&err);
        assert!(message.starts_with("genotype JSON: "), "{message}");
        assert!(message.contains("line 1"), "{message}");
        assert_eq!(
            message.matches("EOF while parsing").count(),
            1,
            "each cause once: {message}"
        );

        let message = error_after(|v| {
            let cells = v["cells"].take();
            v["cell"] = cells;
        });
        assert!(message.contains("unknown field `cell`"), "{message}");

        let message = error_after(|v| v["cells"][0]["n_nodes"] = (-1).into());
        assert!(message.contains("(cell 0)"), "{message}");
    }

    #[test]
    fn save_is_atomic_and_loads_back() {
        let dir = scratch_dir("save");
        let path = dir.join("genotype.json");
        fs::write(&path, "old content").expect("seed file");
        let genotype = sample();
        genotype.save(&path).expect("save succeeds");
        let entries: Vec<_> = fs::read_dir(&dir)
            .expect("dir readable")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("genotype.json")]);
        assert_eq!(Genotype::load(&path).expect("load"), genotype);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn save_refuses_invalid_genotype_and_keeps_old_file() {
        let dir = scratch_dir("save-invalid");
        let path = dir.join("g.json");
        fs::write(&path, "old content").expect("seed file");
        let mut genotype = sample();
        genotype.classes = 1;
        let message = chain(&genotype.save(&path).expect_err("invalid"));
        assert!(message.contains("classes must be at least 2"), "{message}");
        assert_eq!(fs::read_to_string(&path).expect("kept"), "old content");
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 1);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn save_into_missing_directory_names_the_file() {
        let path = std::env::temp_dir().join("genotype-no-such-dir/inner/g.json");
        let message = chain(&sample().save(&path).expect_err("no dir"));
        assert!(message.contains("cannot write genotype file"), "{message}");
        assert!(message.contains("genotype-no-such-dir/inner/g.json"), "{message}");
    }

    #[test]
    fn load_errors_name_the_file() {
        let path = Path::new("/nonexistent/dir/genotype.json");
        let message = chain(&Genotype::load(path).expect_err("missing"));
        assert!(
            message.starts_with("cannot read genotype file /nonexistent/dir/genotype.json: "),
            "{message}"
        );

        let dir = scratch_dir("load-bad");
        let bad = dir.join("bad.json");
        fs::write(&bad, "[1, 2]").expect("write");
        let message = chain(&Genotype::load(&bad).expect_err("not a genotype"));
        assert!(message.contains(&bad.display().to_string()), "{message}");
        assert!(message.contains("genotype JSON"), "{message}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
