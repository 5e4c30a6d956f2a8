//! Identifiers. IDs are opaque strings: new ones are UUIDv7 text (time-ordered, so indexes stay
//! append-friendly); ids from the reference implementation (cuid2, `tpl_default_…`) stay valid.

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
