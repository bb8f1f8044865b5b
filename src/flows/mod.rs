//! Use cases: what happens when someone signs in, changes a credential, turns
//! a second factor on, or an admin manages a user. `api/` parses a request,
//! calls one function here and maps the result to a response; a flow decides,
//! writes through the tables' owners (`accounts`, `auth::sessions`,
//! `auth::devices`, …) on one [`Tx`], and after the commit the `Tx` tells the
//! session caches and the mail worker, so no flow can forget either.

pub mod admin;
pub mod credentials;
pub mod email;
pub mod registration;
pub mod second_factor;
pub mod sessions;
pub mod sign_in;

use sea_orm::{DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use crate::{
    error::ApiError,
    mail::{self, Mail, Notice},
    state::AppState,
};

/// One write transaction and what to announce once it commits: whose
/// sessions or profile changed (every instance's session cache drops them)
/// and whether mail was queued (the outbox worker wakes).
pub struct Tx<'a> {
    state: &'a AppState,
    txn: DatabaseTransaction,
    changed: Vec<Uuid>,
    mailed: bool,
}

impl<'a> Tx<'a> {
    pub async fn begin(state: &'a AppState) -> Result<Self, ApiError> {
        Ok(Self { state, txn: state.writer.begin().await?, changed: Vec::new(), mailed: false })
    }

    /// The connection the tables' owners write on.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The user's sessions or profile change in this transaction.
    pub fn changed(&mut self, user_id: Uuid) {
        if !self.changed.contains(&user_id) {
            self.changed.push(user_id);
        }
    }

    /// Queues a mail with a link (the caller checked the address's allowance
    /// before issuing its token).
    pub async fn mail_link(&mut self, mail: Mail) -> Result<(), ApiError> {
        mail::enqueue(&self.txn, mail).await?;
        self.mailed = true;
        Ok(())
    }

    /// Queues a notice within its recipient's allowance; `false` when dropped.
    pub async fn notify(&mut self, notice: Notice) -> Result<bool, ApiError> {
        let queued = mail::notify(&self.txn, &self.state.limiters, notice).await?;
        self.mailed |= queued;
        Ok(queued)
    }

    /// Commits, then announces.
    pub async fn commit(self) -> Result<(), ApiError> {
        self.txn.commit().await?;
        for user_id in self.changed {
            self.state.sessions.changed(user_id);
        }
        if self.mailed {
            self.state.outbox.wake();
        }
        Ok(())
    }

    /// Undoes everything; nothing is announced.
    pub async fn rollback(self) -> Result<(), ApiError> {
        Ok(self.txn.rollback().await?)
    }
}
