//! Named tokens (table `api_tokens`): kept with the hash of their secret, never the secret,
//! and looked up by that hash on every request, so a revocation holds at once on every node.

use async_trait::async_trait;
use loop_core::store::TokenStore;
use loop_core::token::{ApiToken, NOTE_USE_EVERY_MS, NewToken};
use loop_core::{Error, Result, id::new_id};

use crate::common::check_ref;
use crate::db::{Db, DbExt, unique_as};
use crate::rows::{self, Cols};
use crate::{Backend, SqlStore, args};

#[async_trait]
impl<B: Backend> TokenStore for SqlStore<B> {
    async fn create_token(&self, input: NewToken, secret_hash: String) -> Result<ApiToken> {
        let token = input.token(new_id(), self.now())?;
        self.write((token, secret_hash), move |db, (t, hash)| {
            Box::pin(async move {
                if let Some(project) = &t.project_id {
                    check_ref(db, "projects", "projectId", "project_not_found", project).await?;
                }
                let origins = serde_json::to_string(&t.allowed_origins).map_err(Error::internal)?;
                let sql = "INSERT INTO api_tokens (id, name, role, project_id, secret_hash, max_claims, rate_per_minute, \
                           allowed_origins, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
                let values = args![
                    &t.id,
                    &t.name,
                    t.role.as_str(),
                    &t.project_id,
                    &hash,
                    t.max_claims.map(i64::from),
                    i64::from(t.rate_per_minute),
                    &origins,
                    t.created_at.millis(),
                    t.expires_at.map(|at| at.millis()),
                ];
                db.run(sql, &values).await.map_err(|e| {
                    unique_as(e, || {
                        Error::conflict(
                            "name_taken",
                            format!("a token named {:?} exists: revoke it first, or choose another name", t.name),
                        )
                    })
                })?;
                Ok(t)
            })
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read((), move |db, ()| {
            Box::pin(async move { db.each("SELECT * FROM api_tokens ORDER BY name, created_at", &[], token).await })
        })
        .await
    }

    async fn revoke_token(&self, name: &str) -> Result<ApiToken> {
        let now = self.now();
        self.write(name.to_owned(), move |db, name| {
            Box::pin(async move {
                let sql = "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING *";
                match db.first(sql, &args![now.millis(), &name], token).await? {
                    Some(t) => Ok(t),
                    None => Err(Error::not_found("Token", &name)),
                }
            })
        })
        .await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.read(hash.to_owned(), move |db, hash| {
            Box::pin(
                async move { db.first("SELECT * FROM api_tokens WHERE secret_hash = ?", &args![&hash], token).await },
            )
        })
        .await
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>> {
        self.read(id.to_owned(), move |db, id| {
            Box::pin(async move { db.first("SELECT * FROM api_tokens WHERE id = ?", &args![&id], token).await })
        })
        .await
    }

    async fn touch_token(&self, token: &ApiToken) -> Result<()> {
        let now = self.now();
        self.write(token.id.clone(), move |db, id| {
            Box::pin(async move {
                let sql = "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)";
                db.run(sql, &args![now.millis(), &id, now.millis() - NOTE_USE_EVERY_MS]).await?;
                Ok(())
            })
        })
        .await
    }
}

fn token(row: &impl Cols) -> Result<ApiToken> {
    let origins: String = rows::get(row, "allowed_origins")?;
    Ok(ApiToken {
        id: rows::get(row, "id")?,
        name: rows::get(row, "name")?,
        role: rows::parse(row, "role")?,
        project_id: rows::get(row, "project_id")?,
        max_claims: rows::get::<Option<i64>>(row, "max_claims")?.map(|n| n as u32),
        rate_per_minute: rows::get::<i64>(row, "rate_per_minute")? as u32,
        allowed_origins: serde_json::from_str(&origins).map_err(Error::internal)?,
        created_at: rows::ts(row, "created_at")?,
        expires_at: rows::opt_ts(row, "expires_at")?,
        revoked_at: rows::opt_ts(row, "revoked_at")?,
        last_used_at: rows::opt_ts(row, "last_used_at")?,
    })
}
