//! The team's settings: one row of JSON, read inside the transactions that apply them (so a
//! change takes effect at once on every node).

use async_trait::async_trait;
use loop_core::settings::{Settings, SettingsPatch};
use loop_core::store::SettingsStore;
use loop_core::{Error, Result};

use crate::db::Db;
use crate::{Backend, SqlStore, args, rows};

#[async_trait]
impl<B: Backend> SettingsStore for SqlStore<B> {
    async fn settings(&self) -> Result<Settings> {
        self.read((), move |db, ()| Box::pin(async move { load(db).await })).await
    }

    async fn update_settings(&self, patch: SettingsPatch) -> Result<Settings> {
        if patch.is_empty() {
            return Err(Error::empty_patch());
        }
        self.write(patch, move |db, patch| {
            Box::pin(async move {
                // Locked: two patches at once each keep the other's change.
                db.run("SELECT id FROM settings WHERE id = 1 FOR UPDATE", &[]).await?;
                let mut settings = load(db).await?;
                settings.apply(patch);
                let value = serde_json::to_string(&settings).map_err(Error::internal)?;
                let sql = "INSERT INTO settings (id, value) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value";
                db.run(sql, &args![value.as_str()]).await?;
                Ok(settings)
            })
        })
        .await
    }
}

/// The settings as they are now: the stored ones, or the defaults.
pub(crate) async fn load(db: &mut impl Db) -> Result<Settings> {
    match db.one("SELECT value FROM settings WHERE id = 1", &[]).await? {
        Some(row) => serde_json::from_str(&rows::get::<String>(&row, "value")?).map_err(Error::internal),
        None => Ok(Settings::default()),
    }
}
