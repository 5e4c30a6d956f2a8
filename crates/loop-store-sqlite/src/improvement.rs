//! The improvement loop's writes: a review moves its version's score and may open the one
//! improvement issue its template can have at a time. Runs inside the review's transaction.

use loop_core::improvement::{self, needs_improvement, next_score};
use loop_core::template::{PromptReview, PromptVersion};
use loop_core::{Actor, Error, Result, Timestamp, id::new_id};
use sqlx::{Row, SqliteConnection};

use crate::templates::{find_version, require as require_template};
use crate::{db, issues, rows};

pub(crate) async fn review_added(conn: &mut SqliteConnection, review: &PromptReview, now: Timestamp) -> Result<()> {
    let version =
        find_version(conn, &review.version_id).await?.ok_or_else(|| Error::not_found("Version", &review.version_id))?;
    let score = next_score(version.review_score, review);
    sqlx::query("UPDATE prompt_versions SET review_score = ? WHERE id = ?")
        .bind(score)
        .bind(&version.id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;

    let template = require_template(conn, &version.template_id).await?;
    if template.active_version_id.as_deref() != Some(version.id.as_str()) {
        return Ok(());
    }
    // Reviews count from activation, or from the last request to improve this version.
    let last_request: Option<i64> =
        sqlx::query_scalar("SELECT MAX(created_at) FROM prompt_improvements WHERE version_id = ?")
            .bind(&version.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    let reviews = reviews_since(conn, &version, last_request).await?;
    if !needs_improvement(score, reviews.len() as u64) {
        return Ok(());
    }
    let open_request = sqlx::query(
        "SELECT 1 FROM prompt_improvements p JOIN issues i ON i.id = p.issue_id \
         WHERE p.template_id = ? AND i.deleted_at IS NULL AND i.status NOT IN ('done', 'canceled') LIMIT 1",
    )
    .bind(&template.id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if open_request.is_some() {
        return Ok(());
    }

    let mut labels = Vec::new();
    for (name, color) in improvement::LABELS {
        labels.push(ensure_label(conn, name, color, now).await?);
    }
    let input = improvement::request(&template, &version, score, &reviews, labels)?;
    let issue = issues::create_in(conn, input, &Actor::system(), now).await?;
    sqlx::query("INSERT INTO prompt_improvements (issue_id, template_id, version_id, created_at) VALUES (?, ?, ?, ?)")
        .bind(&issue.id)
        .bind(&template.id)
        .bind(&version.id)
        .bind(now.millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Reviews of a version since it became active (and after `after`, if given), oldest first,
/// with the reviewed issue's number.
/// Reviews of version `?1` made since it became active (`?2`) and after `?3`, oldest first,
/// with the reviewed issue's number.
pub(crate) const REVIEWS_SINCE: &str = "SELECT r.*, i.number AS issue_number FROM prompt_reviews r \
     LEFT JOIN issues i ON i.id = r.issue_id \
     WHERE r.version_id = ?1 AND r.created_at >= ?2 AND r.created_at > ?3 ORDER BY r.created_at, r.rowid";

async fn reviews_since(
    conn: &mut SqliteConnection,
    version: &PromptVersion,
    after: Option<i64>,
) -> Result<Vec<(PromptReview, Option<i64>)>> {
    sqlx::query(REVIEWS_SINCE)
        .bind(&version.id)
        .bind(version.activated_at.map(|t| t.millis()).unwrap_or(i64::MIN))
        .bind(after.unwrap_or(i64::MIN))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(|row| Ok((rows::review(row)?, row.try_get::<Option<i64>, _>("issue_number").map_err(db)?)))
        .collect()
}

/// The id of the live label with this name, creating it if needed.
async fn ensure_label(conn: &mut SqliteConnection, name: &str, color: &str, now: Timestamp) -> Result<String> {
    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM labels WHERE name = ? AND deleted_at IS NULL")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = new_id();
    sqlx::query("INSERT INTO labels (id, name, color, created_at) VALUES (?, ?, ?, ?)")
        .bind(&id)
        .bind(name)
        .bind(color)
        .bind(now.millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(id)
}

/// Recomputes a version's completion rate (done ÷ ended sessions) and average duration (of done
/// sessions: reported, else claim to end) after one of its sessions ended.
pub(crate) async fn refresh_version_metrics(conn: &mut SqliteConnection, version_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE prompt_versions SET \
           completion_rate = (SELECT CAST(SUM(outcome = 'done') AS REAL) / COUNT(*) FROM agent_sessions \
                              WHERE template_version_id = ?1 AND ended_at IS NOT NULL), \
           avg_duration_ms = (SELECT AVG(COALESCE(duration_ms, ended_at - claimed_at)) FROM agent_sessions \
                              WHERE template_version_id = ?1 AND outcome = 'done') \
         WHERE id = ?1",
    )
    .bind(version_id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
