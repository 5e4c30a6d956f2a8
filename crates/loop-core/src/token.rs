//! Named tokens: who is acting. Each person, agent and integration gets its own secret, shown
//! once and stored only as a hash; its role says what it may do, and everything it does is
//! attributed to its name. The master key stays the bootstrap admin.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Timestamp};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Claims work and does the work of its claims; reads everything.
    Agent,
    /// Everything a person does on the dashboard and CLI, except administering tokens.
    Member,
    /// Everything.
    Admin,
    /// Only sends signals (and widget feedback), optionally to one project.
    Ingest,
}

impl TokenRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Agent => "agent",
            TokenRole::Member => "member",
            TokenRole::Admin => "admin",
            TokenRole::Ingest => "ingest",
        }
    }

    /// People sign in to the dashboard; agents and integrations do not.
    pub fn is_person(self) -> bool {
        matches!(self, TokenRole::Member | TokenRole::Admin)
    }
}

impl std::str::FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "agent" => Ok(TokenRole::Agent),
            "member" => Ok(TokenRole::Member),
            "admin" => Ok(TokenRole::Admin),
            "ingest" => Ok(TokenRole::Ingest),
            other => Err(format!("unknown role {other:?}: agent, member, admin or ingest")),
        }
    }
}

/// The most requests a token may send per minute, unless it says otherwise.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 1_200;

/// A named token, without its secret (which is never stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: TokenRole,
    /// An `ingest` token limited to one project sends signals only there.
    pub project_id: Option<String>,
    /// The most claims it may hold at once (`agent` tokens: 1 unless set); `null`: no limit.
    pub max_claims: Option<u32>,
    /// The most requests per minute.
    pub rate_per_minute: u32,
    /// Web origins the feedback widget may send from with this (`ingest`) token.
    pub allowed_origins: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<Timestamp>,
}

/// How often a token's `last_used_at` is written: not on every request.
pub const NOTE_USE_EVERY_MS: i64 = 60_000;

impl ApiToken {
    /// Whether its use at `now` is worth writing down (the last note is a minute old or more).
    pub fn use_to_note(&self, now: Timestamp) -> bool {
        self.last_used_at.is_none_or(|at| now.millis() - at.millis() >= NOTE_USE_EVERY_MS)
    }

    /// Why it no longer works at `now`, if it does not.
    pub fn dead(&self, now: Timestamp) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("revoked")
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Some("expired")
        } else {
            None
        }
    }
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// Lowercase letters, digits, `-`, `_` and `.`, 1–64 characters; unique.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub name: String,
    pub role: TokenRole,
    /// Limits an `ingest` token to one project.
    #[serde(default, deserialize_with = "crate::input::reference")]
    pub project_id: Option<String>,
    /// Days until it stops working (1–3650); none: it does not expire.
    #[serde(default, deserialize_with = "crate::input::count")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<u64>,
    #[serde(default, deserialize_with = "crate::input::count")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 1000))]
    pub max_claims: Option<u64>,
    #[serde(default, deserialize_with = "crate::input::count")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100000))]
    pub rate_per_minute: Option<u64>,
    /// `scheme://host[:port]` of each site that embeds the widget.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl NewToken {
    /// The token this asks for, checked, as of `now`.
    pub fn token(self, id: String, now: Timestamp) -> Result<ApiToken> {
        let name = self.name.trim().to_owned();
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(valid)
            || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(Error::invalid(
                "name",
                "invalid_name",
                "must be 1–64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
            ));
        }
        if self.project_id.is_some() && self.role != TokenRole::Ingest {
            return Err(Error::invalid("projectId", "not_ingest", "only an ingest token is limited to one project"));
        }
        if !self.allowed_origins.is_empty() && self.role != TokenRole::Ingest {
            return Err(Error::invalid("allowedOrigins", "not_ingest", "only an ingest token sends widget feedback"));
        }
        for origin in &self.allowed_origins {
            let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                return Err(Error::invalid(
                    "allowedOrigins",
                    "invalid_origin",
                    format!("{origin:?} is not an origin: give scheme://host[:port], like https://example.com"),
                ));
            }
        }
        let days = match self.expires_in_days {
            Some(d @ 1..=3650) => Some(d),
            Some(_) => return Err(Error::invalid("expiresInDays", "out_of_range", "must be from 1 to 3650 days")),
            None => None,
        };
        if self.max_claims.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(Error::invalid("maxClaims", "out_of_range", "must be from 1 to 1000"));
        }
        if self.rate_per_minute.is_some_and(|n| !(1..=100_000).contains(&n)) {
            return Err(Error::invalid("ratePerMinute", "out_of_range", "must be from 1 to 100000"));
        }
        let max_claims = self.max_claims.map(|n| n as u32).or((self.role == TokenRole::Agent).then_some(1));
        Ok(ApiToken {
            id,
            name,
            role: self.role,
            project_id: self.project_id,
            max_claims,
            rate_per_minute: self.rate_per_minute.map_or(DEFAULT_RATE_PER_MINUTE, |n| n as u32),
            allowed_origins: self.allowed_origins,
            created_at: now,
            expires_at: days.map(|d| now.plus_millis(d as i64 * crate::dispatch::DAY_MS)),
            revoked_at: None,
            last_used_at: None,
        })
    }
}

/// A token just made, with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// `loopk_…`: send it as `Authorization: Bearer <secret>`. Shown once.
    pub secret: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, role: TokenRole) -> NewToken {
        NewToken {
            name: name.into(),
            role,
            project_id: None,
            expires_in_days: None,
            max_claims: None,
            rate_per_minute: None,
            allowed_origins: vec![],
        }
    }

    #[test]
    fn agent_tokens_hold_one_claim_unless_told_and_names_are_checked() {
        let now = Timestamp::from_millis(0);
        let t = new("builder-1", TokenRole::Agent).token("id".into(), now).unwrap();
        assert_eq!((t.max_claims, t.rate_per_minute), (Some(1), DEFAULT_RATE_PER_MINUTE));
        assert_eq!(new("ann", TokenRole::Member).token("id".into(), now).unwrap().max_claims, None);
        for bad in ["", "Ann", "a/b", "-x", &"x".repeat(65)] {
            let e = new(bad, TokenRole::Agent).token("id".into(), now).unwrap_err();
            assert!(e.to_string().starts_with("name:"), "{bad}: {e}");
        }
        let mut site = new("site", TokenRole::Ingest);
        site.allowed_origins = vec!["https://example.com/path".into()];
        assert!(site.token("id".into(), now).unwrap_err().to_string().contains("allowedOrigins"));
        let mut soon = new("soon", TokenRole::Agent);
        soon.expires_in_days = Some(1);
        let t = soon.token("id".into(), now).unwrap();
        assert_eq!(t.dead(now), None);
        assert_eq!(t.dead(now.plus_millis(crate::dispatch::DAY_MS)), Some("expired"));
    }
}
