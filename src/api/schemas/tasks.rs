//! The example resource: tasks.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};
use serde::Deserialize;
use uuid::Uuid;

use crate::entity;

/// A task: the example resource owned by one user.
#[derive(Debug, Clone, Object)]
pub struct Task {
    pub id: i64,
    pub user_id: Uuid,
    pub title: String,
    #[oai(nullable)]
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<entity::task::Model> for Task {
    fn from(m: entity::task::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            title: m.title,
            description: m.description,
            completed: m.completed,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Create a task.
#[derive(Debug, Object, Deserialize)]
pub struct NewTask {
    /// Trimmed, then 1 to 200 characters; no control characters other than
    /// tab, line feed and carriage return.
    #[oai(validator(
        min_length = 1,
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    pub title: String,
    /// Trimmed, then at most 1000 characters; no control characters other
    /// than tab, line feed and carriage return. Blank or `null` means none.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    pub description: Option<String>,
}

/// Change a task. Absent fields stay as they are; `description: null` clears it.
#[derive(Debug, Object, Deserialize)]
pub struct TaskUpdate {
    /// As in `NewTask`; not `null`.
    #[oai(validator(
        min_length = 1,
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    #[serde(default)]
    pub title: MaybeUndefined<String>,
    /// As in `NewTask`; blank or `null` clears it.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    #[serde(default)]
    pub description: MaybeUndefined<String>,
    /// Not `null`.
    #[serde(default)]
    pub completed: MaybeUndefined<bool>,
}

/// Mark a task done or not done.
#[derive(Debug, Object, Deserialize)]
pub struct TaskCompletion {
    pub completed: bool,
}
