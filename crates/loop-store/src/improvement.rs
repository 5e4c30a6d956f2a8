//! The improvement loop's writes: a review moves its version's score and may open the one
//! improvement issue its template can have at a time; an ended session moves its version's
//! completion rate and mean duration. Each runs inside the transaction that caused it, and
//! costs the same however many reviews and sessions came before.

use loop_core::improvement::{self, needs_improvement, next_score};
use loop_core::session::{AgentSession, SessionOutcome};
use loop_core::template::{PromptReview, PromptVersion};
use loop_core::{Actor, Error, Result, Timestamp};

use crate::db::{Db, Write};
use crate::{args, issues, labels, rows, settings, templates};

/// Reviews of version `?1` made since it became active (`?2`) and after `?3`, oldest first,
/// with the reviewed issue's number. Reviews of one millisecond are ordered by id (UUIDv7, in
/// creation order).
pub(crate) const REVIEWS_SINCE: &str = r#"SELECT r.*, i.number AS issue_number FROM prompt_reviews r
     LEFT JOIN issues i ON i.id = r.issue_id
     WHERE r.version_id = ?1 AND r.created_at >= ?2 AND r.created_at > ?3 ORDER BY r.created_at, r.id COLLATE "C""#;

pub(crate) async fn review_added(db: &mut impl Db, review: &PromptReview, now: Timestamp) -> Result<()> {
    let version = templates::find_version(db, &review.version_id).await?;
    let version = version.ok_or_else(|| Error::not_found("Version", &review.version_id))?;
    // The template's lock (already held when called from `create_review`) serialises the
    // reviews of its versions on PostgreSQL: the score below is computed from the last
    // committed one, and two reviews cannot both see "no open request" and open one each.
    let template = templates::lock(db, &version.template_id).await?;
    // Read again under the lock: the score may have moved while this transaction waited.
    let version = templates::find_version(db, &review.version_id).await?;
    let version = version.ok_or_else(|| Error::not_found("Version", &review.version_id))?;
    let score = next_score(version.review_score, review);
    db.run("UPDATE prompt_versions SET review_score = ? WHERE id = ?", &args![score, &version.id]).await?;

    if template.active_version_id.as_deref() != Some(version.id.as_str()) {
        return Ok(());
    }
    let open_request = db
        .one(
            "SELECT 1 AS hit FROM prompt_improvements p JOIN issues i ON i.id = p.issue_id \
             WHERE p.template_id = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') LIMIT 1",
            &args![&template.id],
        )
        .await?;
    if open_request.is_some() {
        return Ok(());
    }
    // Reviews count from activation, or from the last request to improve this version.
    let last_request = db
        .one("SELECT MAX(created_at) AS at FROM prompt_improvements WHERE version_id = ?", &args![&version.id])
        .await?;
    let last_request = match &last_request {
        Some(row) => rows::get::<Option<i64>>(row, "at")?,
        None => None,
    };
    let reviews = reviews_since(db, &version, last_request).await?;
    if !needs_improvement(score, reviews.len() as u64, &settings::load(db).await?) {
        return Ok(());
    }
    let mut labels = Vec::new();
    for (name, color) in improvement::LABELS {
        labels.push(labels::ensure(db, name, color, now).await?);
    }
    let input = improvement::request(&template, &version, score, &reviews, labels)?;
    let issue = issues::create(db, input, Actor::system(), now).await?;
    db.run(
        "INSERT INTO prompt_improvements (issue_id, template_id, version_id, created_at) VALUES (?, ?, ?, ?)",
        &args![&issue.id, &template.id, &version.id, now.millis()],
    )
    .await?;
    Ok(())
}

/// Reviews of a version since it became active (and after `after`, if given), oldest first,
/// with the reviewed issue's number.
pub(crate) async fn reviews_since(
    db: &mut impl Db,
    version: &PromptVersion,
    after: Option<i64>,
) -> Result<Vec<(PromptReview, Option<i64>)>> {
    let since = version.activated_at.map(|t| t.millis()).unwrap_or(i64::MIN);
    let rows = db.all(REVIEWS_SINCE, &args![&version.id, since, after.unwrap_or(i64::MIN)]).await?;
    rows.iter().map(|row| Ok((rows::review(row)?, rows::get(row, "issue_number")?))).collect()
}

/// One more ended session of a version: its completion rate (done ÷ ended sessions) and mean
/// duration (of done sessions: reported, else claim to end) move by what it adds, in one
/// statement whatever the version's history.
pub(crate) fn session_ended(version_id: &str, session: &AgentSession) -> Write {
    let done = session.outcome == Some(SessionOutcome::Done);
    let duration = match (done, session.ended_at) {
        (true, Some(end)) => session.duration_ms.unwrap_or(end.millis() - session.claimed_at.millis()),
        _ => 0,
    };
    Write::new(
        "UPDATE prompt_versions SET sessions_ended = sessions_ended + 1, sessions_done = sessions_done + ?2, \
           done_duration_ms = done_duration_ms + ?3, \
           completion_rate = CAST(sessions_done + ?2 AS DOUBLE PRECISION) / (sessions_ended + 1), \
           avg_duration_ms = CASE WHEN sessions_done + ?2 > 0 \
             THEN CAST(done_duration_ms + ?3 AS DOUBLE PRECISION) / (sessions_done + ?2) END \
         WHERE id = ?1",
        &args![version_id, done as i64, duration],
    )
}
