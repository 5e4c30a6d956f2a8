//! Per-issue agent and model: profiles in `.loop/agent.toml`, chosen for each claim by the
//! claim's model hint, then the issue's labels, then its type; the top-level `agent` otherwise.
//! A profile stopped by its provider's rate limit hands the same claim to its `fallback`.
//!
//! ```toml
//! agent = "claude"
//! [profiles.fast]
//! agent = "claude"
//! model = "haiku"
//! types = ["signal"]
//! fallback = "codex"
//! [profiles.codex]
//! agent = "codex"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// The agent command or preset [default: the top-level agent].
    pub agent: Option<String>,
    /// The model: `--model` for claude, `-m` for codex, and `$LOOP_MODEL` for any agent.
    pub model: Option<String>,
    /// Chosen for issues of these types…
    #[serde(default)]
    pub types: Vec<String>,
    /// …or with one of these labels (labels win over types).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The profile to hand the claim to when this one is rate-limited.
    pub fallback: Option<String>,
}

/// What runs one attempt: the profile's name (`default` for the top-level agent), its agent and
/// its model.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub profile: String,
    pub agent: String,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Profiles {
    pub by_name: BTreeMap<String, Profile>,
}

/// What a claim's profile is chosen by.
pub struct Issue<'a> {
    pub issue_type: &'a str,
    pub labels: &'a [String],
    /// The server's model hint for the claim (`--model-hint` on `loop serve`).
    pub model_hint: Option<&'a str>,
}

impl Profiles {
    /// Checks that every fallback names a profile.
    pub fn new(by_name: BTreeMap<String, Profile>) -> Result<Profiles, String> {
        for (name, p) in &by_name {
            if let Some(f) = &p.fallback
                && !by_name.contains_key(f)
            {
                return Err(format!("profiles.{name}.fallback: there is no profile {f:?}"));
            }
        }
        Ok(Profiles { by_name })
    }

    pub fn choose(&self, default_agent: &str, issue: &Issue) -> Choice {
        let hinted = issue.model_hint.and_then(|hint| {
            self.by_name.iter().find(|(name, p)| p.model.as_deref() == Some(hint) || name.as_str() == hint)
        });
        let labelled = || self.by_name.iter().find(|(_, p)| p.labels.iter().any(|l| issue.labels.contains(l)));
        let typed = || self.by_name.iter().find(|(_, p)| p.types.iter().any(|t| t == issue.issue_type));
        match hinted.or_else(labelled).or_else(typed) {
            Some((name, p)) => self.choice(default_agent, name, p),
            None => Choice { profile: "default".into(), agent: default_agent.to_owned(), model: None },
        }
    }

    /// The profile named `name`, if there is one.
    pub fn named(&self, default_agent: &str, name: &str) -> Option<Choice> {
        self.by_name.get(name).map(|p| self.choice(default_agent, name, p))
    }

    /// The profile to try after `of` was rate-limited, if it names one.
    pub fn fallback(&self, default_agent: &str, of: &Choice) -> Option<Choice> {
        let next = self.by_name.get(&of.profile)?.fallback.as_ref()?;
        Some(self.choice(default_agent, next, &self.by_name[next]))
    }

    fn choice(&self, default_agent: &str, name: &str, p: &Profile) -> Choice {
        Choice {
            profile: name.to_owned(),
            agent: p.agent.clone().unwrap_or_else(|| default_agent.to_owned()),
            model: p.model.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Profiles {
        let p = |agent: &str, model: Option<&str>, types: &[&str], labels: &[&str], fallback: Option<&str>| Profile {
            agent: Some(agent.into()),
            model: model.map(str::to_owned),
            types: types.iter().map(|s| s.to_string()).collect(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            fallback: fallback.map(str::to_owned),
        };
        Profiles::new(BTreeMap::from([
            ("fast".to_owned(), p("claude", Some("haiku"), &["signal"], &[], Some("other"))),
            ("deep".to_owned(), p("claude", Some("opus"), &[], &["hard"], None)),
            ("other".to_owned(), p("codex", None, &[], &[], None)),
        ]))
        .unwrap()
    }

    #[test]
    fn a_claim_gets_the_profile_its_hint_labels_or_type_ask_for() {
        let p = profiles();
        let labels = vec!["hard".to_owned()];
        let issue = |t, labels, hint| Issue { issue_type: t, labels, model_hint: hint };
        assert_eq!(p.choose("x", &issue("task", &[], Some("opus"))).profile, "deep", "the hint first");
        assert_eq!(p.choose("x", &issue("signal", &labels, None)).profile, "deep", "labels before types");
        assert_eq!(p.choose("x", &issue("signal", &[], None)).model.as_deref(), Some("haiku"));
        let plain = p.choose("my-agent", &issue("task", &[], None));
        assert_eq!((plain.profile.as_str(), plain.agent.as_str()), ("default", "my-agent"));
        let fast = p.choose("x", &issue("signal", &[], None));
        assert_eq!(p.fallback("x", &fast).map(|c| c.agent), Some("codex".to_owned()));
        assert_eq!(p.fallback("x", &plain), None);
        let broken = BTreeMap::from([("a".to_owned(), Profile { fallback: Some("b".into()), ..Profile::default() })]);
        assert!(Profiles::new(broken).unwrap_err().contains("profiles.a.fallback"));
    }
}
