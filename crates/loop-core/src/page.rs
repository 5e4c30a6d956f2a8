//! Pagination: `limit` 1–200 (default 50) and `offset` ≥ 0, as the existing clients send.

use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: DEFAULT_LIMIT, offset: 0 }
    }
}

impl Page {
    /// Checks the bounds; the error names the parameter and the rule.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> crate::Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT as i64);
        if !(1..=MAX_LIMIT as i64).contains(&limit) {
            return Err(crate::Error::invalid(
                "limit",
                "out_of_range",
                format!("must be an integer from 1 to {MAX_LIMIT}, got {limit}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(crate::Error::invalid(
                "offset",
                "out_of_range",
                format!("must be an integer ≥ 0, got {offset}"),
            ));
        }
        Ok(Self { limit: limit as u32, offset: offset as u64 })
    }
}

/// One page of a list plus the count of every row matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub total: u64,
}
