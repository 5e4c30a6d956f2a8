//! Feedback from the widget a site embeds (`/widget.js`): what a visitor sends, checked and
//! capped, and the signal it becomes (source `widget`), which de-duplicates like any other.

use serde::Deserialize;
use serde_json::json;

use crate::signal::{NewSignal, Severity, fingerprint};
use crate::{Error, Result};

/// What the visitor says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Bug,
    Feature,
    /// Something was harder than it should be: its own kind of signal.
    Friction,
    General,
}

impl FeedbackKind {
    /// The signal type it becomes.
    pub fn signal_type(self) -> &'static str {
        match self {
            FeedbackKind::Bug => "bug-report",
            FeedbackKind::Feature => "feature-request",
            FeedbackKind::Friction => "friction",
            FeedbackKind::General => "feedback",
        }
    }
}

/// `POST /api/widget/feedback`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Feedback {
    /// The site's ingest token (safe to publish: it only sends signals, from its origins).
    pub token: String,
    #[serde(default, deserialize_with = "crate::input::reference")]
    pub project_id: Option<String>,
    pub kind: FeedbackKind,
    pub message: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub page_url: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// The most a message may hold, in characters.
pub const MAX_MESSAGE: usize = 5_000;

impl Feedback {
    /// Checks what a stranger sent: sizes capped, the message not empty, an email that looks
    /// like one.
    pub fn check(&self) -> Result<()> {
        let long = |field: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.chars().count() > max => {
                Err(Error::invalid(field, "too_long", format!("must be at most {max} characters")))
            }
            _ => Ok(()),
        };
        let message = self.message.trim();
        if message.is_empty() {
            return Err(Error::invalid("message", "required", "write what you want to tell"));
        }
        long("message", &Some(message.to_owned()), MAX_MESSAGE)?;
        long("email", &self.email, 200)?;
        long("pageUrl", &self.page_url, 2_000)?;
        long("userAgent", &self.user_agent, 500)?;
        if let Some(e) = self.email.as_deref().map(str::trim).filter(|e| !e.is_empty())
            && (!e.contains('@') || e.contains(char::is_whitespace))
        {
            return Err(Error::invalid("email", "invalid_email", "must be an email address, like ann@example.com"));
        }
        Ok(())
    }

    /// The signal it becomes, in `project`: titled by the message's first line.
    pub fn into_signal(self, project_id: Option<String>) -> NewSignal {
        let first_line = self.message.trim().lines().next().unwrap_or_default();
        let title: String = first_line.chars().take(120).collect();
        let signal_type = self.kind.signal_type();
        let email = self.email.filter(|e| !e.trim().is_empty());
        NewSignal {
            issue_type: crate::issue::IssueType::Signal,
            status: crate::issue::IssueStatus::Triage,
            fingerprint: fingerprint("widget", signal_type, None, &title),
            source: "widget".into(),
            source_id: None,
            signal_type: signal_type.into(),
            severity: if self.kind == FeedbackKind::Bug { Severity::Medium } else { Severity::Low },
            payload: json!({
                "message": self.message.trim(),
                "kind": signal_type,
                "email": email,
                "pageUrl": self.page_url,
                "userAgent": self.user_agent,
            }),
            title,
            description: Some(self.message.trim().to_owned()),
            project_id,
            follow_up: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feedback(message: &str) -> Feedback {
        Feedback {
            token: "t".into(),
            project_id: None,
            kind: FeedbackKind::Friction,
            message: message.into(),
            email: None,
            page_url: Some("https://example.com/pay".into()),
            user_agent: None,
        }
    }

    #[test]
    fn feedback_is_checked_and_becomes_a_signal_of_its_kind() {
        assert!(feedback("  ").check().unwrap_err().to_string().starts_with("message:"));
        assert!(feedback(&"x".repeat(MAX_MESSAGE + 1)).check().is_err());
        let mut bad = feedback("hi");
        bad.email = Some("not an email".into());
        assert!(bad.check().unwrap_err().to_string().starts_with("email:"));
        let s = feedback("The pay button hides behind the banner\nOn mobile.").into_signal(Some("p".into()));
        assert_eq!((s.source.as_str(), s.signal_type.as_str()), ("widget", "friction"));
        assert_eq!(s.title, "The pay button hides behind the banner");
        assert_eq!(s.payload["pageUrl"], "https://example.com/pay");
        let again = feedback("the pay button hides behind the banner").into_signal(None);
        assert_eq!(again.fingerprint, s.fingerprint, "the same report twice is one signal");
    }
}
