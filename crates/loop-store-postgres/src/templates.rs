//! Prompt templates, versions and reviews (storage only; selection and scoring live in the
//! prompt engine).
//!
//! Several nodes write at once, so every change to a template's versions (numbering, which one
//! is active) first locks the template's row: those changes then run one at a time per
//! template, as they do behind SQLite's single writer.

use async_trait::async_trait;
use loop_core::comment::AuthorType;
use loop_core::store::TemplateStore;
use loop_core::template::{
    ActiveTemplate, NewReview, NewTemplate, NewVersion, PromptReview, PromptTemplate, PromptVersion, TemplateDetail,
    TemplatePatch, TemplateSeed, VersionStatus,
};
use loop_core::{Actor, Error, Page, Paged, Result, id::new_id};
use sqlx::PgConnection;

use crate::rows::{self, Bind, check_ref, find_issue};
use crate::sql::pg;
use crate::{PgStore, db, is_unique_violation};

#[async_trait]
impl TemplateStore for PgStore {
    async fn create_template(&self, input: NewTemplate) -> Result<PromptTemplate> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(p) = &input.project_id {
            check_ref(&mut tx, "projects", "projectId", "project_not_found", p).await?;
        }
        let t = PromptTemplate {
            id: new_id(),
            slug: input.slug.as_str().to_owned(),
            name: input.name.to_string(),
            description: input.description.map(|d| d.to_string()),
            conditions: input.conditions,
            specificity: input.specificity,
            project_id: input.project_id,
            active_version_id: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        sqlx::query(pg(
            "INSERT INTO prompt_templates (id, slug, name, description, conditions, specificity, project_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&t.id)
        .bind(&t.slug)
        .bind(&t.name)
        .bind(&t.description)
        .bind(serde_json::to_string(&t.conditions).map_err(Error::internal)?)
        .bind(t.specificity.value() as i64)
        .bind(&t.project_id)
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // The partial unique index on live slugs decides between concurrent creations.
            if is_unique_violation(&e) {
                Error::conflict("template_slug_taken", "Template slug already exists")
            } else {
                db(e)
            }
        })?;
        tx.commit().await.map_err(db)?;
        Ok(t)
    }

    async fn template_detail(&self, id: &str) -> Result<TemplateDetail> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let template = require(&mut conn, id).await?;
        let active_version = match &template.active_version_id {
            Some(v) => find_version(&mut conn, v).await?,
            None => None,
        };
        Ok(TemplateDetail { template, active_version })
    }

    async fn list_templates(&self, page: Page) -> Result<Paged<PromptTemplate>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let from = "FROM prompt_templates WHERE deleted_at IS NULL";
        rows::page_of(&mut conn, "*", from, "created_at, id COLLATE \"C\"", &[], page, rows::template).await
    }

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<PromptTemplate> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked: the row is read, changed and written back whole.
        let mut t = lock(&mut tx, id).await?;
        if let Some(Some(p)) = &patch.project_id {
            check_ref(&mut tx, "projects", "projectId", "project_not_found", p).await?;
        }
        t.apply_patch(patch, self.now());
        sqlx::query(pg(
            "UPDATE prompt_templates SET name = ?, description = ?, conditions = ?, specificity = ?, project_id = ?, updated_at = ? WHERE id = ?",
        ))
        .bind(&t.name)
        .bind(&t.description)
        .bind(serde_json::to_string(&t.conditions).map_err(Error::internal)?)
        .bind(t.specificity.value() as i64)
        .bind(&t.project_id)
        .bind(t.updated_at.millis())
        .bind(&t.id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(t)
    }

    async fn delete_template(&self, id: &str) -> Result<()> {
        let done = sqlx::query(pg("UPDATE prompt_templates SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL"))
            .bind(self.now().millis())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 { Err(Error::not_found("Template", id)) } else { Ok(()) }
    }

    async fn list_versions(&self, template_id: &str, page: Page) -> Result<Paged<PromptVersion>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let t = require(&mut conn, template_id).await?;
        let from = "FROM prompt_versions WHERE template_id = ?";
        rows::page_of(&mut conn, "*", from, "version DESC", &[Bind::Text(t.id)], page, rows::version).await
    }

    async fn create_version(&self, template_id: &str, input: NewVersion, actor: &Actor) -> Result<PromptVersion> {
        if input.status == Some(VersionStatus::Retired) {
            return Err(Error::invalid("status", "invalid_status", "a new version is draft or active, not retired"));
        }
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The template's lock orders concurrent creations: each reads the numbers and the
        // active version the previous one committed.
        let t = lock(&mut tx, template_id).await?;
        let next: i64 =
            sqlx::query_scalar(pg("SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE template_id = ?"))
                .bind(&t.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let activate = t.active_version_id.is_none() || input.status == Some(VersionStatus::Active);
        let author_type = input.author_type.unwrap_or(AuthorType::Agent);
        let v = PromptVersion {
            id: new_id(),
            template_id: t.id.clone(),
            version: next,
            content: input.content.to_string(),
            changelog: input.changelog.map(|c| c.to_string()),
            author_type,
            author_name: input.author_name.map(|n| n.to_string()).unwrap_or_else(|| actor.name.clone()),
            status: if activate { VersionStatus::Active } else { VersionStatus::Draft },
            usage_count: 0,
            completion_rate: None,
            avg_duration_ms: None,
            review_score: None,
            created_at: now,
            activated_at: activate.then_some(now),
        };
        sqlx::query(pg(
            "INSERT INTO prompt_versions (id, template_id, version, content, changelog, author_type, author_name, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&v.id)
        .bind(&v.template_id)
        .bind(v.version)
        .bind(&v.content)
        .bind(&v.changelog)
        .bind(v.author_type.as_str())
        .bind(&v.author_name)
        .bind(v.status.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if activate {
            activate_version(&mut tx, &t, &v.id, now).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(v)
    }

    async fn promote_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked first, so the version's status read below is the one the last promotion left.
        let t = lock(&mut tx, template_id).await?;
        let mut v = find_version(&mut tx, version_id)
            .await?
            .filter(|v| v.template_id == t.id)
            .ok_or_else(|| Error::not_found("Version", version_id))?;
        if v.status == VersionStatus::Active {
            return Err(Error::invalid("versionId", "already_active", "Version is already active"));
        }
        activate_version(&mut tx, &t, &v.id, now).await?;
        tx.commit().await.map_err(db)?;
        v.status = VersionStatus::Active;
        v.activated_at = Some(now);
        Ok(v)
    }

    async fn retire_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked first: a concurrent promotion cannot make the version active after the check.
        let t = lock(&mut tx, template_id).await?;
        let mut v = find_version(&mut tx, version_id)
            .await?
            .filter(|v| v.template_id == t.id)
            .ok_or_else(|| Error::not_found("Version", version_id))?;
        if v.status == VersionStatus::Active {
            return Err(Error::invalid(
                "status",
                "active_version",
                "the active version cannot be retired: promote another version instead",
            ));
        }
        sqlx::query(pg("UPDATE prompt_versions SET status = 'retired' WHERE id = ?"))
            .bind(&v.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        v.status = VersionStatus::Retired;
        Ok(v)
    }

    async fn create_review(&self, input: NewReview, _actor: &Actor) -> Result<PromptReview> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A version of a deleted template cannot be reviewed any more. The template is locked
        // (not only checked) because the review may open its improvement issue, of which a
        // template has at most one at a time (see `improvement::review_added`).
        match find_version(&mut tx, &input.version_id).await? {
            Some(v) if find_locked(&mut tx, &v.template_id).await?.is_some() => {}
            _ => return Err(Error::not_found("Version", &input.version_id)),
        }
        let issue = find_issue(&mut tx, &input.issue_id).await?.ok_or_else(|| {
            Error::invalid("issueId", "issue_not_found", format!("issue {} not found", input.issue_id))
        })?;
        let r = PromptReview {
            id: new_id(),
            version_id: input.version_id,
            issue_id: issue.id,
            clarity: input.clarity,
            completeness: input.completeness,
            relevance: input.relevance,
            feedback: input.feedback.map(|f| f.to_string()),
            author_type: input.author_type.unwrap_or(AuthorType::Agent),
            created_at: now,
        };
        sqlx::query(pg(
            "INSERT INTO prompt_reviews (id, version_id, issue_id, clarity, completeness, relevance, feedback, author_type, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&r.id)
        .bind(&r.version_id)
        .bind(&r.issue_id)
        .bind(r.clarity.value() as i64)
        .bind(r.completeness.value() as i64)
        .bind(r.relevance.value() as i64)
        .bind(&r.feedback)
        .bind(r.author_type.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        crate::improvement::review_added(&mut tx, &r, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(r)
    }

    async fn seed_template(&self, seed: TemplateSeed) -> Result<bool> {
        let now = self.now();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Nodes starting together may seed at once: `ON CONFLICT DO NOTHING` makes the loser
        // insert nothing (either unique index: the id, or the live slug) instead of failing.
        let created = sqlx::query(pg(
            "INSERT INTO prompt_templates (id, slug, name, description, conditions, specificity, active_version_id, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8 WHERE NOT EXISTS \
             (SELECT 1 FROM prompt_templates WHERE id = ?1 OR (slug = ?2 AND deleted_at IS NULL)) \
             ON CONFLICT DO NOTHING",
        ))
        .bind(&seed.id)
        .bind(&seed.slug)
        .bind(&seed.name)
        .bind(&seed.description)
        .bind(serde_json::to_string(&seed.conditions).map_err(Error::internal)?)
        .bind(seed.specificity.value() as i64)
        .bind(&seed.version_id)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        if created {
            sqlx::query(pg(
                "INSERT INTO prompt_versions (id, template_id, version, content, changelog, author_type, author_name, status, \
                 created_at, activated_at) VALUES (?, ?, 1, ?, 'Initial default template', 'human', 'loop', 'active', ?, ?)",
            ))
            .bind(&seed.version_id)
            .bind(&seed.id)
            .bind(&seed.content)
            .bind(now.millis())
            .bind(now.millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn active_templates(&self) -> Result<Vec<ActiveTemplate>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let templates = sqlx::query(
            "SELECT * FROM prompt_templates WHERE deleted_at IS NULL AND active_version_id IS NOT NULL \
             ORDER BY created_at, id COLLATE \"C\"",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(rows::template)
        .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(templates.len());
        for template in templates {
            let Some(id) = &template.active_version_id else { continue };
            if let Some(version) = find_version(&mut conn, id).await? {
                out.push(ActiveTemplate { template, version });
            }
        }
        Ok(out)
    }

    async fn list_reviews(&self, template_id: &str, page: Page) -> Result<Paged<PromptReview>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let t = require(&mut conn, template_id).await?;
        let from = "FROM prompt_reviews r JOIN prompt_versions v ON v.id = r.version_id WHERE v.template_id = ?";
        let order = "r.created_at DESC, r.id COLLATE \"C\" DESC";
        rows::page_of(&mut conn, "r.*", from, order, &[Bind::Text(t.id)], page, rows::review).await
    }
}

pub(crate) async fn require(conn: &mut PgConnection, id: &str) -> Result<PromptTemplate> {
    rows::one(&mut *conn, "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL", id, rows::template)
        .await?
        .ok_or_else(|| Error::not_found("Template", id))
}

pub(crate) async fn find_version(conn: &mut PgConnection, id: &str) -> Result<Option<PromptVersion>> {
    rows::one(&mut *conn, "SELECT * FROM prompt_versions WHERE id = ?", id, rows::version).await
}

/// Like [`require`], and locks the template's row until the transaction ends. Whoever changes
/// a template's versions (numbers, the active one, its improvement request) takes this lock
/// first; waiting for it, a transaction then reads what the previous holder committed.
pub(crate) async fn lock(conn: &mut PgConnection, id: &str) -> Result<PromptTemplate> {
    find_locked(conn, id).await?.ok_or_else(|| Error::not_found("Template", id))
}

/// The live template, locked (see [`lock`]), if there is one.
async fn find_locked(conn: &mut PgConnection, id: &str) -> Result<Option<PromptTemplate>> {
    rows::one(
        &mut *conn,
        "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL FOR UPDATE",
        id,
        rows::template,
    )
    .await
}

/// Exactly one active version: the old one is retired in the same transaction. The caller
/// holds the template's lock ([`lock`]).
async fn activate_version(
    conn: &mut PgConnection,
    t: &PromptTemplate,
    version_id: &str,
    now: loop_core::Timestamp,
) -> Result<()> {
    sqlx::query(pg(
        "UPDATE prompt_versions SET status = 'retired' WHERE template_id = ? AND status = 'active' AND id <> ?",
    ))
    .bind(&t.id)
    .bind(version_id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query(pg("UPDATE prompt_versions SET status = 'active', activated_at = ? WHERE id = ?"))
        .bind(now.millis())
        .bind(version_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query(pg("UPDATE prompt_templates SET active_version_id = ?, updated_at = ? WHERE id = ?"))
        .bind(version_id)
        .bind(now.millis())
        .bind(&t.id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}
