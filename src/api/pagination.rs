//! `limit` / `offset` query parameters, shared by every list operation.

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

impl Page {
    /// 422 naming the parameter when `limit` is outside 1..=200 or `offset` is negative.
    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) if (1..=MAX_LIMIT as i64).contains(&l) => l as u64,
            Some(_) => {
                errors.push(FieldError::new("limit", "must be between 1 and 200"));
                0
            }
        };
        let offset = match offset {
            None => 0,
            Some(o) if o >= 0 => o as u64,
            Some(_) => {
                errors.push(FieldError::new("offset", "must not be negative"));
                0
            }
        };
        if errors.is_empty() { Ok(Self { limit, offset }) } else { Err(ApiError::Validation(errors)) }
    }
}
