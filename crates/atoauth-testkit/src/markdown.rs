//! Generated sections of BENCHMARKS.md: each bench command rewrites only the text between its
//! own markers, so several commands share one document.

/// `document` with the text from `start` to `end` (both markers included) replaced by
/// `section`, which carries the markers itself; appended when the markers are missing.
#[must_use]
pub fn splice(document: &str, start: &str, end: &str, section: &str) -> String {
    match (document.find(start), document.find(end)) {
        (Some(from), Some(to)) if to > from => format!(
            "{}{section}{}",
            &document[..from],
            document[to + end.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n\n{section}", document.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn only_the_marked_section_changes() {
        let document = "intro\n<!-- a -->\nold\n<!-- /a -->\nafter\n";
        let new = splice(
            document,
            "<!-- a -->",
            "<!-- /a -->",
            "<!-- a -->\nnew\n<!-- /a -->\n",
        );
        assert_eq!(new, "intro\n<!-- a -->\nnew\n<!-- /a -->\nafter\n");
        let appended = splice(
            "intro\n",
            "<!-- b -->",
            "<!-- /b -->",
            "<!-- b -->x<!-- /b -->\n",
        );
        assert_eq!(appended, "intro\n\n<!-- b -->x<!-- /b -->\n");
    }
}
