//! Rule violations, reported with the id of the rule they break (e.g. `B5.9`, `F4.11`), so that
//! the same validators serve the library (fail fast) and the developer tools (show them all).

use std::fmt;

/// Where the rule ids are explained, one anchor per id: `{RULES_URL}#G2`.
pub const RULES_URL: &str = "https://github.com/atoauth/atoauth/blob/main/docs/rules.md";

/// The explanation of a client rule id (`G2`, `B5.1`) in `docs/rules.md`.
#[must_use]
pub fn rule_url(rule: &str) -> String {
    format!("{RULES_URL}#{rule}")
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document or configuration does not work: the server refuses it, or a rule forbids it.
    #[default]
    Error,
    /// It works, but is not recommended (client requirements B6.3).
    Warning,
}

/// One broken rule. Its id is explained in
/// [docs/rules.md](https://github.com/atoauth/atoauth/blob/main/docs/rules.md)
/// ([`Violation::help_url`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The rule id in the atproto OAuth client requirements (`B1`, `C3`, `F4.6`, …).
    pub rule: &'static str,
    /// What is wrong, in one line.
    pub message: String,
    /// An error, or only a warning.
    pub severity: Severity,
}

impl Violation {
    pub(crate) fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// An error-level finding of `rule`.
    pub fn error(rule: &'static str, message: impl Into<String>) -> Self {
        Self::new(rule, message)
    }

    /// A warning-level finding of `rule`.
    pub fn warning(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::new(rule, message)
        }
    }

    /// Where this rule is explained ([`rule_url`]).
    #[must_use]
    pub fn help_url(&self) -> String {
        rule_url(self.rule)
    }

    /// Whether this is an error (not only a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "[{}] {}", self.rule, self.message),
            Severity::Warning => write!(f, "[{}] warning: {}", self.rule, self.message),
        }
    }
}

/// Several violations, displayed one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl Violations {
    /// The violations.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// The rule ids, in order.
    #[must_use]
    pub fn rules(&self) -> Vec<&'static str> {
        self.0.iter().map(|v| v.rule).collect()
    }
}

/// Collects violations while a document is checked.
#[derive(Debug, Default)]
pub(crate) struct Checker(pub(crate) Vec<Violation>);

impl Checker {
    pub(crate) fn require(&mut self, ok: bool, rule: &'static str, message: impl Into<String>) {
        if !ok {
            self.0.push(Violation::new(rule, message));
        }
    }

    pub(crate) fn fail(&mut self, rule: &'static str, message: impl Into<String>) {
        self.0.push(Violation::new(rule, message));
    }

    pub(crate) fn warn(&mut self, rule: &'static str, message: impl Into<String>) {
        self.0.push(Violation::warning(rule, message));
    }
}
