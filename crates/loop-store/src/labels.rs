//! Labels: unique by live name.

use async_trait::async_trait;
use loop_core::label::{Label, LabelPatch, NewLabel};
use loop_core::store::LabelStore;
use loop_core::{Error, Page, Paged, Result, Timestamp, id::new_id};

use crate::common;
use crate::db::{Db, DbExt, unique_as};
use crate::{Backend, SqlStore, args, rows};

fn name_taken() -> Error {
    Error::conflict("label_name_taken", "Label name already exists")
}

#[async_trait]
impl<B: Backend> LabelStore for SqlStore<B> {
    async fn create_label(&self, input: NewLabel) -> Result<Label> {
        let l = Label {
            id: new_id(),
            name: input.name.to_string(),
            color: input.color.to_string(),
            created_at: self.now(),
            deleted_at: None,
        };
        self.write(l, move |db, l| {
            Box::pin(async move {
                let sql = "INSERT INTO labels (id, name, color, created_at) VALUES (?, ?, ?, ?)";
                db.run(sql, &args![&l.id, &l.name, &l.color, l.created_at.millis()])
                    .await
                    .map_err(|e| unique_as(e, name_taken))?;
                Ok(l)
            })
        })
        .await
    }

    async fn get_label(&self, id: &str) -> Result<Label> {
        self.read(id.to_owned(), move |db, id| Box::pin(async move { find(db, &id, "").await })).await
    }

    async fn list_labels(&self, page: Page) -> Result<Paged<Label>> {
        self.read((), move |db, ()| {
            Box::pin(async move {
                let order = r#"name COLLATE "C", id COLLATE "C""#;
                common::page_of(db, "*", "FROM labels WHERE deleted_at IS NULL", order, &[], page, rows::label).await
            })
        })
        .await
    }

    async fn update_label(&self, id: &str, patch: LabelPatch) -> Result<Label> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        let id = id.to_owned();
        self.write((id, patch), move |db, (id, patch)| {
            Box::pin(async move {
                let mut l = find(db, &id, "FOR NO KEY UPDATE").await?;
                l.apply_patch(patch);
                let sql = "UPDATE labels SET name = ?, color = ? WHERE id = ?";
                db.run(sql, &args![&l.name, &l.color, &l.id]).await.map_err(|e| unique_as(e, name_taken))?;
                Ok(l)
            })
        })
        .await
    }

    async fn delete_label(&self, id: &str) -> Result<()> {
        let (id, now) = (id.to_owned(), self.now());
        self.write(id, move |db, id| {
            Box::pin(async move {
                let sql = "UPDATE labels SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL";
                match db.run(sql, &args![now.millis(), &id]).await? {
                    0 => Err(Error::not_found("Label", &id)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}

/// A live label, `lock`ed as for `common::find_issue_locked`.
async fn find(db: &mut impl Db, id: &str, lock: &str) -> Result<Label> {
    let sql = format!("SELECT * FROM labels WHERE id = ? AND deleted_at IS NULL {lock}");
    db.first(&sql, &args![id], rows::label).await?.ok_or_else(|| Error::not_found("Label", id))
}

/// The id of the live label with this name, creating it if needed. On PostgreSQL two
/// transactions creating it at once meet on the unique index of live names: the second waits
/// for the first, inserts nothing and reads the first one's label.
pub(crate) async fn ensure(db: &mut impl Db, name: &str, color: &str, now: Timestamp) -> Result<String> {
    let existing = "SELECT id FROM labels WHERE name = ? AND deleted_at IS NULL";
    if let Some(row) = db.one(existing, &args![name]).await? {
        return rows::get(&row, "id");
    }
    let inserted = db
        .one(
            "INSERT INTO labels (id, name, color, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING RETURNING id",
            &args![new_id().as_str(), name, color, now.millis()],
        )
        .await?;
    let row = match inserted {
        Some(row) => Some(row),
        None => db.one(existing, &args![name]).await?,
    };
    match row {
        Some(row) => rows::get(&row, "id"),
        None => Err(Error::Internal(format!("label {name} vanished while being created"))),
    }
}
