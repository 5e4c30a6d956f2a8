//! The merge slot (table `merge_slots`): a lease on landing a scope's pull requests, so two
//! runners never rebase and merge at once. One conditional upsert takes it: it succeeds for the
//! holder (a renewal) or when the lease has run out, on either backend and on any node.

use loop_core::rework::{MergeSlot, SlotRequest};
use loop_core::{Error, Result, Timestamp};

use crate::args;
use crate::db::{Db, DbExt};
use crate::rows;

pub(crate) async fn take(db: &mut impl Db, scope: String, req: SlotRequest, now: Timestamp) -> Result<MergeSlot> {
    req.validate()?;
    let expires = now.millis() + req.seconds as i64 * 1000;
    let sql = "INSERT INTO merge_slots (scope, holder, expires_at) VALUES (?1, ?2, ?3) \
               ON CONFLICT (scope) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
               WHERE merge_slots.holder = excluded.holder OR merge_slots.expires_at <= ?4 RETURNING *";
    if let Some(slot) =
        db.first(sql, &args![&scope, req.holder.as_str(), expires, now.millis()], rows::merge_slot).await?
    {
        return Ok(slot);
    }
    let held = db.first("SELECT * FROM merge_slots WHERE scope = ?", &args![&scope], rows::merge_slot).await?;
    let (holder, until) = held.map(|s| (s.holder, s.expires_at.to_string())).unwrap_or_default();
    Err(Error::conflict(
        "slot_held",
        format!("{holder} is landing {scope} until {until} (or until it frees the slot): wait and try again"),
    ))
}

pub(crate) async fn free(db: &mut impl Db, scope: String, holder: String) -> Result<()> {
    db.run("DELETE FROM merge_slots WHERE scope = ? AND holder = ?", &args![&scope, &holder]).await.map(|_| ())
}
