//! The dashboard: server-rendered pages (maud), embedded in the binary, signed in with a
//! session cookie. Reading needs no JavaScript; the small page script adds live updates,
//! keyboard shortcuts and the theme switch. Every write is a form post with a CSRF token that
//! answers with a redirect (post/redirect/get); `leases::wake_on_write` then wakes waiting
//! claims and drops cached templates, as for the API's writes.

mod activity;
mod goals;
mod inbox;
mod issues;
mod layout;
mod live;
mod markdown;
mod metrics;
mod prompts;
pub mod session;
mod tokens;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::html;
use serde::Deserialize;

use crate::AppState;
use crate::connections::PeerAddr;
use crate::error::ApiError;

pub use session::Revoked;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/app.css", get(|| asset("text/css", include_str!("../../assets/app.css"))))
        .route("/assets/app.js", get(|| asset("text/javascript", include_str!("../../assets/app.js"))))
        .route("/events", get(live::stream))
        .merge(issues::router())
        .merge(inbox::router())
        .route("/activity", get(activity::page))
        .merge(goals::router())
        .merge(metrics::router())
        .merge(prompts::router())
        .merge(tokens::router())
        .layer(axum::middleware::map_response(harden))
}

/// What a browser must not do with these pages: frame them, run inline or foreign script.
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// A failure shown as a page, with the same status and message the API would give.
pub struct WebError(pub ApiError);

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let ApiError { status, message, .. } = self.0;
        let title = status.canonical_reason().unwrap_or("Error");
        let body = layout::bare(
            title,
            html! {
                section.card.narrow {
                    h1 { (status.as_u16()) " " (title) }
                    p.error { (message) }
                    p { a href="/issues" { "Back to the issues" } }
                }
            },
        );
        (status, body).into_response()
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

/// Where a form post returns to (303, so the browser GETs it).
pub fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A form post from another origin is refused even before its CSRF token is looked at. Loop's
/// own origin is the request's `Host`, or that of `--public-url` (a reverse proxy may pass an
/// internal name as `Host`).
fn same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), ApiError> {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if host.to_str().is_ok_and(|h| h == origin_host) || origin.eq_ignore_ascii_case(origin_of(public_url)) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "cross_origin", "Forms may only be posted from Loop's own pages"))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    error: Option<String>,
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    let next = session::local_path(q.next.as_deref());
    layout::bare(
        "Sign in",
        html! {
            section.card.narrow.login {
                h1 { span.logo aria-hidden="true" { "◎" } " Loop" }
                p.muted { "Sign in with your own token (" code { "loop tokens create NAME --role member" } "), or with the API key that "
                    code { "loop serve" } " printed when it first started (also in " code { "api-key" } " in its data directory)." }
                @if q.error.is_some() {
                    p.error role="alert" { "That is neither this server's API key nor a live member or admin token." }
                }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label for="key" { "API key" }
                    input #key type="password" name="key" autocomplete="current-password" required autofocus placeholder="loop_…";
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
}

/// Sign-in attempts an address may make per minute.
const SIGN_INS_PER_MINUTE: u32 = 10;

async fn login(
    State(s): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> WebResult {
    same_origin(&headers, &s.config.public_url)?;
    let address = PeerAddr::name(peer);
    if let Err(wait) = s.per_address.take(&format!("sign-in {address}"), SIGN_INS_PER_MINUTE, std::time::Instant::now())
    {
        let message = format!("Too many sign-in attempts from this address: try again in {} s", wait.as_secs().max(1));
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).retry_after(wait).into());
    }
    let next = session::local_path(f.next.as_deref());
    let key = f.key.trim();
    // The master key, or a person's (member or admin) named token.
    let signed_in = if s.config.api_key.is_valid(key) {
        Some(None)
    } else if key.starts_with(crate::named_token::PREFIX) {
        match crate::auth::named(&s, key).await {
            Ok(t) if t.role.is_person() => Some(Some(t.id)),
            _ => None,
        }
    } else {
        None
    };
    let Some(token) = signed_in else {
        let to = format!("/login?error=1&next={}", session::url_encode(&next));
        return Ok(Redirect::to(&to).into_response());
    };
    let now = loop_core::Clock::now(&loop_core::SystemClock).millis();
    let cookie = session::set_cookie(Some(&session::issue(&s.config.api_key, now, token.as_deref())), secure(&s));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

/// A form with nothing but its CSRF token (logout, promote).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    pub csrf: String,
}

async fn logout(
    State(s): State<AppState>,
    viewer: session::Viewer,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> WebResult {
    check_form(&viewer, &headers, &f.csrf)?;
    let now = loop_core::Clock::now(&loop_core::SystemClock).millis();
    session::revoke(&s, &headers, now);
    Ok(([(header::SET_COOKIE, session::set_cookie(None, secure(&s)))], Redirect::to("/login")).into_response())
}

/// Cookies are marked Secure when Loop is reached over HTTPS.
fn secure(s: &AppState) -> bool {
    s.config.public_url.starts_with("https://")
}

/// Checks a form post: same origin and this session's CSRF token.
pub fn check_form(viewer: &session::Viewer, headers: &HeaderMap, csrf: &str) -> Result<(), ApiError> {
    same_origin(headers, &viewer.public_url)?;
    viewer.check_csrf(csrf)
}

/// A form's fields as the API's input type, so the dashboard gets the API's validation and
/// messages.
pub fn input<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    crate::extract::parse_json(value.to_string().as_bytes())
}
