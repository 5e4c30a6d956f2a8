//! `/settings/tokens`: the named tokens, for admins (the master key or an admin token): who
//! has one, when it was last used, make one (its secret shown once, on the page that made it),
//! revoke one.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use loop_core::token::{ApiToken, NewToken};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section};
use super::session::Viewer;
use super::{WebResult, back_to, check_form};
use crate::error::ApiError;
use crate::{AppState, named_token};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/tokens", get(page).post(create)).route("/settings/tokens/revoke", post(revoke))
}

fn admins_only(viewer: &Viewer) -> Result<(), ApiError> {
    if viewer.admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Only an admin administers tokens"))
    }
}

async fn page(State(s): State<AppState>, viewer: Viewer) -> WebResult<Markup> {
    admins_only(&viewer)?;
    render(&s, &viewer, None).await
}

async fn render(s: &AppState, viewer: &Viewer, made: Option<(String, String)>) -> WebResult<Markup> {
    let (tokens, cursor) = tokio::join!(s.store.list_tokens(), s.store.last_event_id());
    let (tokens, cursor) = (tokens?, cursor?);
    let body = html! {
        h1 { "Tokens" }
        @if let Some((name, secret)) = &made {
            section.card role="status" {
                h2 { "Token " (name) " made" }
                p { "Its secret, shown this once (Loop keeps only its hash):" }
                pre.secret { code { (secret) } }
            }
        }
        section.card {
            table {
                thead { tr { th { "Name" } th { "Role" } th { "State" } th { "Last used" } th { "Limits" } th {} } }
                tbody { @for t in &tokens { (row(viewer, t)) } }
            }
            @if tokens.is_empty() { p.muted { "No named tokens yet: agents, people and integrations each get their own below." } }
        }
        section.card {
            h2 { "New token" }
            form method="post" action="/settings/tokens" {
                (layout::csrf(viewer))
                label for="name" { "Name" }
                input #name name="name" required pattern="[a-z0-9][a-z0-9._\\-]{0,63}" placeholder="builder-1";
                label for="role" { "Role" }
                select #role name="role" {
                    option value="agent" { "agent — claims work and does it" }
                    option value="member" { "member — a person" }
                    option value="admin" { "admin — everything" }
                    option value="ingest" { "ingest — sends signals and widget feedback" }
                }
                label for="expires" { "Expires after (days, empty: never)" }
                input #expires name="expires" type="number" min="1" max="3650";
                label for="origins" { "Widget origins (ingest; one per line)" }
                textarea #origins name="origins" rows="2" placeholder="https://example.com" {}
                button.primary type="submit" { "Make token" }
            }
        }
    };
    Ok(layout::page(viewer, Section::Settings, "Tokens", cursor, body))
}

fn row(viewer: &Viewer, t: &ApiToken) -> Markup {
    let day = |at: &loop_core::Timestamp| at.to_string().chars().take(10).collect::<String>();
    let state = match (&t.revoked_at, &t.expires_at) {
        (Some(at), _) => format!("revoked {}", day(at)),
        (None, Some(at)) => format!("expires {}", day(at)),
        (None, None) => "live".into(),
    };
    let claims = t.max_claims.map_or(String::new(), |n| format!("{n} claim(s), "));
    html! {
        tr {
            td { strong { (t.name) } } td { (t.role.as_str()) } td { (state) }
            td { (t.last_used_at.as_ref().map_or("never".into(), day)) }
            td { (claims) (t.rate_per_minute) "/min" }
            td {
                @if t.revoked_at.is_none() {
                    form method="post" action="/settings/tokens/revoke" {
                        (layout::csrf(viewer))
                        input type="hidden" name="name" value=(t.name);
                        button type="submit" { "Revoke" }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    origins: String,
}

async fn create(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> WebResult<Markup> {
    check_form(&viewer, &headers, &f.csrf)?;
    admins_only(&viewer)?;
    let role =
        f.role.parse().map_err(|e: String| ApiError::from(loop_core::Error::invalid("role", "invalid_role", e)))?;
    let expires_in_days = match f.expires.trim() {
        "" => None,
        d => Some(d.parse().map_err(|_| {
            ApiError::from(loop_core::Error::invalid("expires", "invalid_days", "must be a number of days"))
        })?),
    };
    let input = NewToken {
        name: f.name,
        role,
        project_id: None,
        expires_in_days,
        max_claims: None,
        rate_per_minute: None,
        allowed_origins: f.origins.lines().map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect(),
    };
    let (secret, hash) = named_token::issue();
    let token = s.store.create_token(input, hash).await?;
    render(&s, &viewer, Some((token.name, secret))).await
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    name: String,
}

async fn revoke(State(s): State<AppState>, viewer: Viewer, headers: HeaderMap, Form(f): Form<RevokeForm>) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    admins_only(&viewer)?;
    s.store.revoke_token(&f.name).await?;
    Ok(back_to("/settings/tokens"))
}
