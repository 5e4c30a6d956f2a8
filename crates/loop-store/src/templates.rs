//! Prompt templates, versions and reviews (storage only; selection and scoring live in the
//! prompt engine).
//!
//! On PostgreSQL every change to a template's versions (numbering, which one is active) first
//! locks the template's row: those changes then run one at a time per template, as they do
//! behind SQLite's single writer.

use async_trait::async_trait;
use loop_core::comment::AuthorType;
use loop_core::store::TemplateStore;
use loop_core::template::{
    ActiveTemplate, NewReview, NewTemplate, NewVersion, PromptReview, PromptTemplate, PromptVersion, Seeded,
    TemplateDetail, TemplatePatch, TemplateSeed, VersionStatus, review_exists,
};
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common::{self, check_ref, find_issue};
use crate::db::{Db, DbExt, unique_as};
use crate::{Backend, SqlStore, args, improvement, rows};

#[async_trait]
impl<B: Backend> TemplateStore for SqlStore<B> {
    async fn create_template(&self, input: NewTemplate) -> Result<PromptTemplate> {
        let now = self.now();
        self.write(input, move |db, input| Box::pin(create(db, input, now))).await
    }

    async fn template_detail(&self, id: &str) -> Result<TemplateDetail> {
        self.read(id.to_owned(), move |db, id| {
            Box::pin(async move {
                let template = require(db, &id).await?;
                let active_version = match &template.active_version_id {
                    Some(v) => find_version(db, v).await?,
                    None => None,
                };
                Ok(TemplateDetail { template, active_version })
            })
        })
        .await
    }

    async fn list_templates(&self, page: Page) -> Result<Paged<PromptTemplate>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let from = "FROM prompt_templates WHERE deleted_at IS NULL";
                common::page_of(db, "*", from, r#"created_at, id COLLATE "C""#, &[], page, rows::template).await
            })
        })
        .await
    }

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<PromptTemplate> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let (id, now) = (id.to_owned(), self.now());
        self.write((id, patch), move |db, (id, patch)| Box::pin(update(db, id, patch, now))).await
    }

    async fn delete_template(&self, id: &str) -> Result<()> {
        let (id, now) = (id.to_owned(), self.now());
        self.write(id, move |db, id| {
            Box::pin(async move {
                let sql = "UPDATE prompt_templates SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL";
                match db.run(sql, &args![now.millis(), &id]).await? {
                    0 => Err(Error::not_found("Template", &id)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }

    async fn list_versions(&self, template_id: &str, page: Page) -> Result<Paged<PromptVersion>> {
        self.read(template_id.to_owned(), move |db, id| {
            Box::pin(async move {
                let t = require(db, &id).await?;
                let from = "FROM prompt_versions WHERE template_id = ?";
                common::page_of(db, "*", from, "version DESC", &args![&t.id], page, rows::version).await
            })
        })
        .await
    }

    async fn create_version(&self, template_id: &str, input: NewVersion, actor: &Actor) -> Result<PromptVersion> {
        if input.status == Some(VersionStatus::Retired) {
            return Err(Error::invalid("status", "invalid_status", "a new version is draft or active, not retired"));
        }
        let (id, now, actor) = (template_id.to_owned(), self.now(), actor.clone());
        self.write((id, input, actor), move |db, (id, input, actor)| {
            Box::pin(create_version(db, id, input, actor, now))
        })
        .await
    }

    async fn promote_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion> {
        let (id, version_id, now) = (template_id.to_owned(), version_id.to_owned(), self.now());
        self.write((id, version_id), move |db, (id, version_id)| {
            Box::pin(async move {
                // Locked first, so the version's status read below is the one the last promotion left.
                let t = lock(db, &id).await?;
                let mut v = version_of(db, &t, &version_id).await?;
                if v.status == VersionStatus::Active {
                    return Err(Error::invalid("versionId", "already_active", "Version is already active"));
                }
                activate(db, &t, &v.id, now).await?;
                v.status = VersionStatus::Active;
                v.activated_at = Some(now);
                Ok(v)
            })
        })
        .await
    }

    async fn retire_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion> {
        let (id, version_id) = (template_id.to_owned(), version_id.to_owned());
        self.write((id, version_id), move |db, (id, version_id)| {
            Box::pin(async move {
                // Locked first: a concurrent promotion cannot make the version active after the check.
                let t = lock(db, &id).await?;
                let mut v = version_of(db, &t, &version_id).await?;
                if v.status == VersionStatus::Active {
                    return Err(Error::invalid(
                        "status",
                        "active_version",
                        "the active version cannot be retired: promote another version instead",
                    ));
                }
                db.run("UPDATE prompt_versions SET status = 'retired' WHERE id = ?", &args![&v.id]).await?;
                v.status = VersionStatus::Retired;
                Ok(v)
            })
        })
        .await
    }

    async fn create_review(&self, input: NewReview, actor: &Actor) -> Result<PromptReview> {
        let (now, actor) = (self.now(), actor.clone());
        self.write((input, actor), move |db, (input, actor)| Box::pin(create_review(db, input, actor, now))).await
    }

    async fn list_reviews(&self, template_id: &str, page: Page) -> Result<Paged<PromptReview>> {
        self.read(template_id.to_owned(), move |db, id| {
            Box::pin(async move {
                let t = require(db, &id).await?;
                let from =
                    "FROM prompt_reviews r JOIN prompt_versions v ON v.id = r.version_id WHERE v.template_id = ?";
                let order = r#"r.created_at DESC, r.id COLLATE "C" DESC"#;
                common::page_of(db, "r.*", from, order, &args![&t.id], page, rows::review).await
            })
        })
        .await
    }

    async fn active_templates(&self) -> Result<Vec<ActiveTemplate>> {
        self.read((), |db, ()| Box::pin(active(db))).await
    }

    async fn seed_template(&self, seed: TemplateSeed) -> Result<Seeded> {
        let now = self.now();
        self.write(seed, move |db, seed| Box::pin(seed_one(db, seed, now))).await
    }
}

async fn create(db: &mut impl Db, input: NewTemplate, now: Timestamp) -> Result<PromptTemplate> {
    if let Some(p) = &input.project_id {
        check_ref(db, "projects", "projectId", "project_not_found", p).await?;
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
    let conditions = serde_json::to_string(&t.conditions).map_err(Error::internal)?;
    db.run(
        "INSERT INTO prompt_templates (id, slug, name, description, conditions, specificity, project_id, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &args![
            &t.id,
            &t.slug,
            &t.name,
            &t.description,
            conditions.as_str(),
            t.specificity.value() as i64,
            &t.project_id,
            now.millis(),
            now.millis(),
        ],
    )
    .await
    // The partial unique index on live slugs decides between concurrent creations.
    .map_err(|e| unique_as(e, || Error::conflict("template_slug_taken", "Template slug already exists")))?;
    Ok(t)
}

async fn update(db: &mut impl Db, id: String, patch: TemplatePatch, now: Timestamp) -> Result<PromptTemplate> {
    // Locked: the row is read, changed and written back whole.
    let mut t = lock(db, &id).await?;
    if let Some(Some(p)) = &patch.project_id {
        check_ref(db, "projects", "projectId", "project_not_found", p).await?;
    }
    t.apply_patch(patch, now);
    let conditions = serde_json::to_string(&t.conditions).map_err(Error::internal)?;
    db.run(
        "UPDATE prompt_templates SET name = ?, description = ?, conditions = ?, specificity = ?, project_id = ?, \
         updated_at = ? WHERE id = ?",
        &args![
            &t.name,
            &t.description,
            conditions.as_str(),
            t.specificity.value() as i64,
            &t.project_id,
            t.updated_at.millis(),
            &t.id,
        ],
    )
    .await?;
    Ok(t)
}

async fn create_version(
    db: &mut impl Db,
    id: String,
    input: NewVersion,
    actor: Actor,
    now: Timestamp,
) -> Result<PromptVersion> {
    // The template's lock orders concurrent creations: each reads the numbers and the active
    // version the previous one committed.
    let t = lock(db, &id).await?;
    let next = db
        .int(
            "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM prompt_versions WHERE template_id = ?",
            &args![&t.id],
            "next",
        )
        .await?;
    let activate_it = input.activates(t.active_version_id.is_some());
    let v = PromptVersion {
        id: new_id(),
        template_id: t.id.clone(),
        version: next,
        content: input.content.to_string(),
        changelog: input.changelog.map(|c| c.to_string()),
        author_type: input.author_type.unwrap_or(AuthorType::Agent),
        author_name: input.author_name.map(|n| n.to_string()).unwrap_or_else(|| actor.name.clone()),
        status: if activate_it { VersionStatus::Active } else { VersionStatus::Draft },
        usage_count: 0,
        completion_rate: None,
        avg_duration_ms: None,
        review_score: None,
        created_at: now,
        activated_at: activate_it.then_some(now),
    };
    db.run(
        "INSERT INTO prompt_versions (id, template_id, version, content, changelog, author_type, author_name, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &args![
            &v.id,
            &v.template_id,
            v.version,
            &v.content,
            &v.changelog,
            v.author_type.as_str(),
            &v.author_name,
            v.status.as_str(),
            now.millis(),
        ],
    )
    .await?;
    if activate_it {
        activate(db, &t, &v.id, now).await?;
    }
    Ok(v)
}

async fn create_review(db: &mut impl Db, input: NewReview, actor: Actor, now: Timestamp) -> Result<PromptReview> {
    // A version of a deleted template cannot be reviewed any more. The template is locked (not
    // only checked) because the review may open its improvement issue, of which a template has
    // at most one at a time (see `improvement::review_added`).
    match find_version(db, &input.version_id).await? {
        Some(v) if find_locked(db, &v.template_id).await?.is_some() => {}
        _ => return Err(Error::not_found("Version", &input.version_id)),
    }
    let issue = find_issue(db, &input.issue_id)
        .await?
        .ok_or_else(|| Error::invalid("issueId", "issue_not_found", format!("issue {} not found", input.issue_id)))?;
    let r = input.into_review(issue.id, &actor, now);
    db.run(
        "INSERT INTO prompt_reviews (id, version_id, issue_id, clarity, completeness, relevance, feedback, author_type, \
         author_name, session_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &args![
            &r.id,
            &r.version_id,
            &r.issue_id,
            r.clarity.value() as i64,
            r.completeness.value() as i64,
            r.relevance.value() as i64,
            &r.feedback,
            r.author_type.as_str(),
            &r.author_name,
            &r.session_id,
            now.millis(),
        ],
    )
    .await
    .map_err(|e| unique_as(e, review_exists))?;
    improvement::review_added(db, &r, now).await?;
    Ok(r)
}

/// Creates a shipped template with its first version, unless that id ever existed (so a user's
/// deletion or edits stick) or a live template already uses the slug. On PostgreSQL nodes
/// starting together may seed at once: `ON CONFLICT DO NOTHING` makes the loser insert nothing.
async fn seed_one(db: &mut impl Db, seed: TemplateSeed, now: Timestamp) -> Result<Seeded> {
    let conditions = serde_json::to_string(&seed.conditions).map_err(Error::internal)?;
    let created = db
        .run(
            "INSERT INTO prompt_templates (id, slug, name, description, conditions, specificity, active_version_id, \
             created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8 WHERE NOT EXISTS \
             (SELECT 1 FROM prompt_templates WHERE id = ?1 OR (slug = ?2 AND deleted_at IS NULL)) \
             ON CONFLICT DO NOTHING",
            &args![
                &seed.id,
                &seed.slug,
                &seed.name,
                seed.description.as_str(),
                conditions.as_str(),
                seed.specificity.value() as i64,
                &seed.version_id,
                now.millis(),
            ],
        )
        .await?
        == 1;
    if created {
        insert_shipped(db, &seed.id, &seed.version_id, 1, &seed.content, "Initial default template", now).await?;
        return Ok(Seeded::Created);
    }
    // Still running a text Loop shipped, and this release ships another: it becomes the next
    // version. A version anyone else wrote, or a template deleted, is left as it is.
    let Some(t) = find_locked(db, &seed.id).await? else { return Ok(Seeded::Kept) };
    let Some(active) = find_version(db, t.active_version_id.as_deref().unwrap_or_default()).await? else {
        return Ok(Seeded::Kept);
    };
    if active.author_name != SHIPPED_BY || active.content == seed.content {
        return Ok(Seeded::Kept);
    }
    let id = new_id();
    let changelog = "Updated default template, shipped with a new release of Loop";
    insert_shipped(db, &t.id, &id, active.version + 1, &seed.content, changelog, now).await?;
    activate(db, &t, &id, now).await?;
    Ok(Seeded::Updated)
}

/// The author of the versions Loop ships.
const SHIPPED_BY: &str = "loop";

async fn insert_shipped(
    db: &mut impl Db,
    template_id: &str,
    id: &str,
    version: i64,
    content: &str,
    changelog: &str,
    now: Timestamp,
) -> Result<()> {
    let sql = "INSERT INTO prompt_versions (id, template_id, version, content, changelog, author_type, author_name, \
               status, created_at, activated_at) VALUES (?, ?, ?, ?, ?, 'human', ?, 'active', ?, ?)";
    let args = args![id, template_id, version, content, changelog, SHIPPED_BY, now.millis(), now.millis()];
    db.run(sql, &args).await.map(|_| ())
}

/// Every live template with an active version, with that version.
async fn active(db: &mut impl Db) -> Result<Vec<ActiveTemplate>> {
    let sql = r#"SELECT * FROM prompt_templates WHERE deleted_at IS NULL AND active_version_id IS NOT NULL
         ORDER BY created_at, id COLLATE "C""#;
    let templates = db.each(sql, &[], rows::template).await?;
    let mut out = Vec::with_capacity(templates.len());
    for template in templates {
        let Some(id) = &template.active_version_id else { continue };
        if let Some(version) = find_version(db, id).await? {
            out.push(ActiveTemplate { template, version });
        }
    }
    Ok(out)
}

pub(crate) async fn require(db: &mut impl Db, id: &str) -> Result<PromptTemplate> {
    let sql = "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL";
    db.first(sql, &args![id], rows::template).await?.ok_or_else(|| Error::not_found("Template", id))
}

pub(crate) async fn find_version(db: &mut impl Db, id: &str) -> Result<Option<PromptVersion>> {
    db.first("SELECT * FROM prompt_versions WHERE id = ?", &args![id], rows::version).await
}

/// A version of template `t`.
async fn version_of(db: &mut impl Db, t: &PromptTemplate, version_id: &str) -> Result<PromptVersion> {
    let v = find_version(db, version_id).await?.filter(|v| v.template_id == t.id);
    v.ok_or_else(|| Error::not_found("Version", version_id))
}

/// Like [`require`], and locks the template's row until the transaction ends (PostgreSQL).
/// Whoever changes a template's versions (numbers, the active one, its improvement request)
/// takes this lock first; waiting for it, a transaction then reads what the previous holder
/// committed.
pub(crate) async fn lock(db: &mut impl Db, id: &str) -> Result<PromptTemplate> {
    find_locked(db, id).await?.ok_or_else(|| Error::not_found("Template", id))
}

async fn find_locked(db: &mut impl Db, id: &str) -> Result<Option<PromptTemplate>> {
    let sql = "SELECT * FROM prompt_templates WHERE id = ? AND deleted_at IS NULL FOR UPDATE";
    db.first(sql, &args![id], rows::template).await
}

/// Exactly one active version: the old one is retired in the same transaction. The caller
/// holds the template's lock ([`lock`]).
async fn activate(db: &mut impl Db, t: &PromptTemplate, version_id: &str, now: Timestamp) -> Result<()> {
    let retire =
        "UPDATE prompt_versions SET status = 'retired' WHERE template_id = ? AND status = 'active' AND id <> ?";
    db.run(retire, &args![&t.id, version_id]).await?;
    db.run(
        "UPDATE prompt_versions SET status = 'active', activated_at = ? WHERE id = ?",
        &args![now.millis(), version_id],
    )
    .await?;
    let sql = "UPDATE prompt_templates SET active_version_id = ?, updated_at = ? WHERE id = ?";
    db.run(sql, &args![version_id, now.millis(), &t.id]).await?;
    Ok(())
}
