//! Which model a runner should use for a claim: a hint per template or per issue type, set by
//! whoever runs the server (`--model-hint triage=haiku`), returned as the claim's `meta.model`.
//! Loop runs no model; the hint only travels to the runner, which maps it to its own names.

use std::collections::BTreeMap;

use loop_core::issue::IssueType;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelHints(BTreeMap<String, String>);

impl ModelHints {
    /// `KEY=MODEL` pairs; a key is a template slug (`signal-triage`), an issue type (`signal`,
    /// `hypothesis`…), or `triage` for every template whose slug ends in `-triage`.
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut hints = BTreeMap::new();
        for pair in pairs.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let (key, model) = pair
                .split_once('=')
                .map(|(k, m)| (k.trim(), m.trim()))
                .filter(|(k, m)| !k.is_empty() && !m.is_empty())
                .ok_or_else(|| format!("model hint {pair:?}: expected KEY=MODEL, e.g. hypothesis=opus"))?;
            hints.insert(key.to_owned(), model.to_owned());
        }
        Ok(Self(hints))
    }

    /// The hint for a claim given `template` (its slug) on an issue of `issue_type`: the
    /// template's own first, then `triage` for triage templates, then the issue type's.
    pub fn for_claim(&self, template: &str, issue_type: IssueType) -> Option<&str> {
        let triage = template.ends_with("-triage").then_some("triage");
        [Some(template), triage, Some(issue_type.as_str())]
            .into_iter()
            .flatten()
            .find_map(|k| self.0.get(k))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_wins_then_triage_then_the_type() {
        let hints =
            ModelHints::parse(&["triage=haiku".into(), "hypothesis=opus".into(), "task-execution=sonnet".into()])
                .unwrap();
        assert_eq!(hints.for_claim("posthog-metric-triage", IssueType::Signal), Some("haiku"));
        assert_eq!(hints.for_claim("hypothesis-planning", IssueType::Hypothesis), Some("opus"));
        assert_eq!(hints.for_claim("task-execution", IssueType::Task), Some("sonnet"));
        assert_eq!(hints.for_claim("monitor-check", IssueType::Monitor), None);
        assert!(ModelHints::parse(&["opus".into()]).unwrap_err().contains("KEY=MODEL"));
    }
}
