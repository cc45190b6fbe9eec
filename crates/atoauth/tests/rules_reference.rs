//! docs/rules.md explains every rule id the code reports: each id that a `Violation` or an error
//! carries as a string (`"G2"`) or cites in brackets (`[G2]`) has its anchor there, so `Violation::help_url`
//! and a reader looking up `[G2]` always land on an explanation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use atoauth::protocol::rules::{RULES_URL, Violation};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// A client rule id: a section letter A–T, a number, and an optional `.number`.
fn is_rule_id(s: &str) -> bool {
    let mut chars = s.chars();
    let section = chars.next().is_some_and(|c| ('A'..='T').contains(&c));
    let rest = chars.as_str();
    let (number, sub) = rest.split_once('.').unwrap_or((rest, "1"));
    section
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !sub.is_empty()
        && sub.bytes().all(|b| b.is_ascii_digit())
}

/// Ids cited in the sources: `[X]` anywhere, and the string argument of the rule checkers.
fn cited_ids() -> BTreeSet<String> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    // String literals that look like rule ids but are names from other specs.
    let not_rules = ["S256"];
    let mut ids = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // `[G2]` in messages.
        for piece in text.split('[').skip(1) {
            if let Some((id, _)) = piece.split_once(']')
                && is_rule_id(id)
            {
                ids.insert(id.to_owned());
            }
        }
        // `"G2"`: the rule a Violation or a typed error carries.
        for (index, literal) in text.split('"').enumerate() {
            if index % 2 == 1 && is_rule_id(literal) && !not_rules.contains(&literal) {
                ids.insert(literal.to_owned());
            }
        }
    }
    ids
}

#[test]
fn every_cited_rule_id_has_an_anchor_in_docs_rules_md() {
    let rules = std::fs::read_to_string(workspace().join("docs/rules.md")).unwrap();
    let cited = cited_ids();
    assert!(
        cited.len() > 60,
        "the scan finds the rule ids in use: {cited:?}"
    );
    for required in ["B1", "B5.10", "F4.13", "G2", "L2.3", "O4"] {
        assert!(cited.contains(required), "{required} is cited: {cited:?}");
    }
    let missing: Vec<_> = cited
        .iter()
        .filter(|id| !rules.contains(&format!("<a id=\"{id}\"></a>")))
        .collect();
    assert!(
        missing.is_empty(),
        "no anchor in docs/rules.md for {missing:?}"
    );
}

#[test]
fn a_violation_links_to_its_anchor() {
    let violation = Violation::error("B5.1", "client_id differs");
    assert_eq!(violation.help_url(), format!("{RULES_URL}#B5.1"));
    assert!(RULES_URL.ends_with("docs/rules.md"));
}
