//! Labels. Names are unique among live labels; a deleted label's name can be reused. The
//! partial unique index `labels_live_name` decides between concurrent writers too.

use async_trait::async_trait;
use loop_core::label::{Label, LabelPatch, NewLabel};
use loop_core::store::LabelStore;
use loop_core::{Error, Page, Paged, Result, id::new_id};
use sqlx::PgConnection;

use crate::rows;
use crate::sql::pg;
use crate::{PgStore, db, is_unique_violation};

#[async_trait]
impl LabelStore for PgStore {
    async fn create_label(&self, input: NewLabel) -> Result<Label> {
        let l = Label {
            id: new_id(),
            name: input.name.to_string(),
            color: input.color.to_string(),
            created_at: self.now(),
            deleted_at: None,
        };
        sqlx::query(pg("INSERT INTO labels (id, name, color, created_at) VALUES (?, ?, ?, ?)"))
            .bind(&l.id)
            .bind(&l.name)
            .bind(&l.color)
            .bind(l.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(name_taken)?;
        Ok(l)
    }

    async fn get_label(&self, id: &str) -> Result<Label> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        require(&mut conn, id).await
    }

    async fn list_labels(&self, page: Page) -> Result<Paged<Label>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        // Byte order, as SQLite's default (BINARY) collation compares text.
        rows::page_of(
            &mut conn,
            "*",
            "FROM labels WHERE deleted_at IS NULL",
            r#"name COLLATE "C", id COLLATE "C""#,
            &[],
            page,
            rows::label,
        )
        .await
    }

    async fn update_label(&self, id: &str, patch: LabelPatch) -> Result<Label> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locked: two concurrent patches (a rename and a recolour) must not undo each other.
        let mut l = rows::one(
            &mut tx,
            "SELECT * FROM labels WHERE id = ? AND deleted_at IS NULL FOR NO KEY UPDATE",
            id,
            rows::label,
        )
        .await?
        .ok_or_else(|| Error::not_found("Label", id))?;
        l.apply_patch(patch);
        sqlx::query(pg("UPDATE labels SET name = ?, color = ? WHERE id = ?"))
            .bind(&l.name)
            .bind(&l.color)
            .bind(&l.id)
            .execute(&mut *tx)
            .await
            .map_err(name_taken)?;
        tx.commit().await.map_err(db)?;
        Ok(l)
    }

    async fn delete_label(&self, id: &str) -> Result<()> {
        // One statement: of two concurrent deletes, the second finds it deleted.
        let done = sqlx::query(pg("UPDATE labels SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL"))
            .bind(self.now().millis())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 { Err(Error::not_found("Label", id)) } else { Ok(()) }
    }
}

fn name_taken(e: sqlx::Error) -> Error {
    if is_unique_violation(&e) { Error::conflict("label_name_taken", "Label name already exists") } else { db(e) }
}

async fn require(conn: &mut PgConnection, id: &str) -> Result<Label> {
    rows::one(&mut *conn, "SELECT * FROM labels WHERE id = ? AND deleted_at IS NULL", id, rows::label)
        .await?
        .ok_or_else(|| Error::not_found("Label", id))
}
