//! README.md's two-minute tour, exactly as written: its `sh` block runs top to bottom in
//! bash against a fresh home, with the real `nudge` first on PATH, every line must succeed,
//! and every shown output (`#   ...`) must appear in what it printed.

use std::process::Command;

use crate::util::{Home, nudge_bin};

/// The first ```sh block after `heading` in README.md.
fn block_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let from = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let rest = &readme[from..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("\n```").expect("the block's end");
    rest[start..start + end].to_owned()
}

/// A shown output's words that must appear: ids (`5c1d`, `5c1d0b...`) and the
/// parenthesised remark stand for anything.
fn words_of(shown: &str) -> Vec<String> {
    let shown = shown.split("  (").next().unwrap_or(shown);
    shown
        .split_whitespace()
        .filter(|w| {
            let hexish = w.len() >= 4
                && w.trim_end_matches('.')
                    .chars()
                    .all(|c| c.is_ascii_hexdigit())
                && w.chars().any(|c| c.is_ascii_digit());
            !hexish && !w.contains("...")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let tour = block_after("## A two-minute tour");
    let home = Home::new();
    let cwd = tempfile::tempdir().unwrap();
    let script = cwd.path().join("tour.sh");
    std::fs::write(
        &script,
        format!(
            "set -euo pipefail\ntrap 'echo \"README tour: line $LINENO failed\" >&2' ERR\n{tour}\n"
        ),
    )
    .unwrap();
    let bin_dir = nudge_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(cwd.path())
        .env("PATH", path)
        .env("NUDGE_HOME", home.path())
        .env("NUDGE_CONFIG", home.config_path())
        .env("NUDGE_NOW", &home.now)
        .env("TZ", &home.tz)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("NUDGE_TOKEN")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the tour failed:\n{printed}");
    let mut shown = 0;
    for line in tour.lines() {
        let Some(expected) = line.strip_prefix("#   ") else {
            continue;
        };
        let words = words_of(expected);
        let found = printed.lines().any(|l| {
            let mut rest = l;
            words.iter().all(|w| match rest.find(w.as_str()) {
                Some(at) => {
                    rest = &rest[at + w.len()..];
                    true
                }
                None => false,
            })
        });
        assert!(found, "README shows {expected:?}, not printed:\n{printed}");
        shown += 1;
    }
    assert!(shown >= 4, "the tour shows what it prints");
    // And it did what it says: the export it took is the journal's.
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("backup.json")).unwrap()).unwrap();
    let mut done: Vec<&str> = exported["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "done")
        .filter_map(|s| s["text"].as_str())
        .collect();
    done.sort();
    assert_eq!(
        done,
        [
            "Called Priya about teaching",
            "Draft email to Sam about UX roles"
        ],
        "{exported}"
    );
}
