//! Outgoing mail through a transactional outbox. A change that causes a mail
//! writes the mail row with [`enqueue`] on its own transaction, so the mail
//! exists exactly when the change does; [`Outbox::run`] sends it in the
//! background with retries and exponential backoff, so an SMTP outage delays
//! mail, never loses it and never fails a request. A mail the server refuses
//! for good (or that runs out of attempts) stays in the table, marked failed,
//! and is logged. Without `SMTP_URL` in development, mails go to the log.
//!
//! Two kinds of mail: those carrying a link somebody is waiting for (reset,
//! verification, confirmation: [`enqueue`], after the caller checked the
//! address's allowance) and notices about a change already made ([`notify`],
//! which checks the allowance itself). Links go out first, so a flood of
//! notices never delays a reset; neither kind names an address in a log line
//! or a stored error.

pub mod templates;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, NotSet, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};
use tokio::sync::Notify;

use crate::{auth::ratelimit::RateLimiters, clock::now, config::Config, entity::mail_outbox, error::ApiError};

/// A mail ready to be queued.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A mail Latchkey sends on its own initiative, about something that already
/// happened (a password changed, a second factor turned off). Only
/// [`notify`] queues one: each counts toward its recipient's allowance.
#[derive(Clone, Debug)]
pub struct Notice {
    /// The allowance it counts toward: 3 of one kind per address an hour.
    pub kind: &'static str,
    pub mail: Mail,
}

impl Notice {
    pub fn new(kind: &'static str, mail: Mail) -> Self {
        Self { kind, mail }
    }
}

/// `mail_outbox.priority`: lower goes first.
const LINK_PRIORITY: i16 = 0;
const NOTICE_PRIORITY: i16 = 1;

/// Writes `mail` (one with a link; the caller checked the address's
/// allowance before issuing its token) to the outbox on the caller's
/// connection (its transaction). Call [`Outbox::wake`] after the commit so
/// the worker sends it at once.
pub async fn enqueue(db: &impl ConnectionTrait, mail: Mail) -> Result<(), ApiError> {
    insert(db, mail, LINK_PRIORITY).await
}

/// Queues `notice` on the caller's transaction if its recipient has
/// allowance left for its kind; `false` when it was dropped (the caller's
/// answer stays the same either way).
pub async fn notify(db: &impl ConnectionTrait, limiters: &RateLimiters, notice: Notice) -> Result<bool, ApiError> {
    if !limiters.allow_mail_to(&notice.mail.to, notice.kind).await {
        return Ok(false);
    }
    insert(db, notice.mail, NOTICE_PRIORITY).await?;
    Ok(true)
}

async fn insert(db: &impl ConnectionTrait, mail: Mail, priority: i16) -> Result<(), ApiError> {
    let now = now();
    mail_outbox::ActiveModel {
        id: NotSet,
        recipient: Set(mail.to),
        subject: Set(mail.subject),
        text_body: Set(mail.text),
        html_body: Set(mail.html),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        failed_at: Set(None),
        last_error: Set(None),
        priority: Set(priority),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How mail leaves the process.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Development without `SMTP_URL`: the whole mail, link included, is logged.
    Log,
}

/// Why one send failed.
enum SendError {
    /// Worth retrying (connection refused, timeout, 4xx).
    Transient(String),
    /// The server refused for good (5xx) or the mail cannot be built.
    Permanent(String),
}

/// The outbox worker's handle: shared by the app state (to wake it) and the worker.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    retry_base: Duration,
    max_attempts: u32,
    wake: Notify,
}

/// How long a worker owns a claimed mail before another may try it (a
/// process that died mid-send releases its mails after this).
const CLAIM: Duration = Duration::from_secs(120);
/// How often the worker looks for due mails when nobody wakes it.
const POLL: Duration = Duration::from_secs(1);
const BATCH: u64 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// A `mail_outbox.last_error` column holds this much.
const MAX_ERROR_CHARS: usize = 500;

impl Outbox {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let transport = match &config.smtp_url {
            Some(url) => {
                let url = with_opportunistic_tls(url.expose());
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not a valid smtp:// or smtps:// URL: {e}"))?;
                Transport::Smtp(builder.timeout(Some(Duration::from_secs(15))).build())
            }
            None => Transport::Log,
        };
        let from: Mailbox = config
            .mail_from
            .parse()
            .with_context(|| format!("MAIL_FROM `{}` is not a mail address", config.mail_from))?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                from,
                retry_base: config.mail_retry_base.max(Duration::from_millis(10)),
                max_attempts: config.mail_max_attempts.max(1),
                wake: Notify::new(),
            }),
        })
    }

    /// Tells the worker a mail was committed.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Sends due mails until the task is dropped.
    pub async fn run(self, db: DatabaseConnection) {
        loop {
            match self.send_due(&db).await {
                // A full batch: there may be more right away.
                Ok(n) if n as u64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "mail outbox: cannot read the queue; retrying"),
            }
            let _ = tokio::time::timeout(POLL, self.inner.wake.notified()).await;
        }
    }

    /// One pass over the due mails; returns how many it looked at.
    pub async fn send_due(&self, db: &DatabaseConnection) -> anyhow::Result<usize> {
        let now = now();
        let due = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::SentAt.is_null())
            .filter(mail_outbox::Column::FailedAt.is_null())
            .filter(mail_outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(mail_outbox::Column::Priority)
            .order_by_asc(mail_outbox::Column::Id)
            .limit(BATCH)
            .all(db)
            .await
            .context("loading due mails")?;
        let count = due.len();
        // Sent side by side: each waits mostly on the SMTP server, and the
        // transport keeps a pool of connections.
        let mut sends = tokio::task::JoinSet::new();
        for mail in due {
            let (outbox, db) = (self.clone(), db.clone());
            sends.spawn(async move { outbox.claim_and_attempt(&db, mail, now).await });
        }
        while let Some(result) = sends.join_next().await {
            result.context("a mail send task panicked")??;
        }
        Ok(count)
    }

    async fn claim_and_attempt(
        &self,
        db: &DatabaseConnection,
        mail: mail_outbox::Model,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        // Claim it: only the worker whose update lands sends it.
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(now + chrono_duration(CLAIM)))
            .filter(mail_outbox::Column::Id.eq(mail.id))
            .filter(mail_outbox::Column::NextAttemptAt.eq(mail.next_attempt_at))
            .filter(mail_outbox::Column::SentAt.is_null())
            .exec(db)
            .await
            .context("claiming a mail")?
            .rows_affected
            == 1;
        if claimed { self.attempt(db, mail).await } else { Ok(()) }
    }

    async fn attempt(&self, db: &DatabaseConnection, mail: mail_outbox::Model) -> anyhow::Result<()> {
        let id = mail.id;
        let attempts = mail.attempts + 1;
        let result = self.send(&mail).await;
        let mut row: mail_outbox::ActiveModel = mail.into();
        row.attempts = Set(attempts);
        if result.is_err() {
            crate::prometheus::mail_send_failed();
        }
        match result {
            Ok(()) => {
                row.sent_at = Set(Some(now()));
                row.last_error = Set(None);
                // The bodies hold live links: once delivered, the table keeps
                // only who got what when.
                row.text_body = Set(String::new());
                row.html_body = Set(String::new());
                tracing::info!(mail_id = id, attempts, "mail sent");
            }
            Err(SendError::Permanent(e)) => {
                row.failed_at = Set(Some(now()));
                row.text_body = Set(String::new());
                row.html_body = Set(String::new());
                tracing::error!(mail_id = id, attempts, error = %e, "mail refused for good; kept in the outbox as failed");
                row.last_error = Set(Some(cut(e)));
            }
            Err(SendError::Transient(e)) if attempts as u32 >= self.inner.max_attempts => {
                row.failed_at = Set(Some(now()));
                row.text_body = Set(String::new());
                row.html_body = Set(String::new());
                tracing::error!(mail_id = id, attempts, error = %e, "mail out of attempts; kept in the outbox as failed");
                row.last_error = Set(Some(cut(e)));
            }
            Err(SendError::Transient(e)) => {
                let wait = backoff(self.inner.retry_base, attempts as u32);
                row.next_attempt_at = Set(now() + chrono_duration(wait));
                tracing::warn!(mail_id = id, attempts, retry_in = ?wait, error = %e, "mail not sent; will retry");
                row.last_error = Set(Some(cut(e)));
            }
        }
        row.update(db).await.context("recording a mail attempt")?;
        Ok(())
    }

    async fn send(&self, mail: &mail_outbox::Model) -> Result<(), SendError> {
        match &self.inner.transport {
            Transport::Log => {
                // Development only (production requires SMTP_URL): the link is
                // the point, so a newcomer can follow it from the terminal.
                tracing::info!(
                    to = %mail.recipient,
                    subject = %mail.subject,
                    "SMTP_URL is not set; this mail is not sent:\n{}",
                    mail.text_body
                );
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let to: Mailbox = mail
                    .recipient
                    .parse()
                    .map_err(|_| SendError::Permanent("the recipient is not a mail address".into()))?;
                let message = Message::builder()
                    .from(self.inner.from.clone())
                    .to(to)
                    .subject(&mail.subject)
                    .multipart(MultiPart::alternative_plain_html(mail.text_body.clone(), mail.html_body.clone()))
                    .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))?;
                smtp.send(message).await.map(drop).map_err(|e| {
                    let description = describe_smtp_error(&e);
                    if e.is_permanent() { SendError::Permanent(description) } else { SendError::Transient(description) }
                })
            }
        }
    }
}

/// Mails waiting to be sent (neither sent nor failed for good).
pub async fn pending(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    mail_outbox::Entity::find()
        .filter(mail_outbox::Column::SentAt.is_null())
        .filter(mail_outbox::Column::FailedAt.is_null())
        .count(db)
        .await
}

/// Deletes sent and failed mails older than `older_than` (their bodies are
/// already cleared; the rows are the delivery record).
pub async fn purge_done(db: &DatabaseConnection, older_than: Duration) -> Result<u64, sea_orm::DbErr> {
    let cutoff = now() - chrono_duration(older_than);
    let done = sea_orm::Condition::any()
        .add(mail_outbox::Column::SentAt.lt(cutoff))
        .add(mail_outbox::Column::FailedAt.lt(cutoff));
    Ok(mail_outbox::Entity::delete_many().filter(done).exec(db).await?.rows_affected)
}

/// What went wrong, for the log and `last_error`, without the server's reply
/// text: a refusal usually quotes the recipient (`550 5.1.1 <ada@…>: no such
/// user`), and addresses stay out of logs. The reply code says enough.
fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        let class = if e.is_permanent() { "permanent" } else { "transient" };
        return format!("{class} SMTP error, reply code {code}");
    }
    if e.is_response() || e.is_client() {
        // A reply we could not read, or the client's own complaint about the
        // message: either may quote an address.
        let class = if e.is_response() { "unreadable SMTP reply" } else { "SMTP client error" };
        return class.to_owned();
    }
    // No reply at all: what failed underneath (refused, DNS, certificate,
    // timeout) names the relay at most, never a recipient.
    match std::error::Error::source(e) {
        Some(cause) => format!("SMTP connection error: {cause}"),
        None => "SMTP connection error".to_owned(),
    }
}

/// `retry_base`, doubled for each attempt after the first, at most an hour.
fn backoff(retry_base: Duration, attempts: u32) -> Duration {
    retry_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20)).min(MAX_BACKOFF)
}

/// `smtp://` without a `tls=` choice upgrades with STARTTLS when the server offers it.
fn with_opportunistic_tls(url: &str) -> String {
    if !url.starts_with("smtp://") || url.contains("tls=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}tls=opportunistic")
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn cut(mut s: String) -> String {
    if let Some((idx, _)) = s.char_indices().nth(MAX_ERROR_CHARS) {
        s.truncate(idx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_an_hour() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }

    #[test]
    fn plain_smtp_urls_upgrade_when_the_server_offers_starttls() {
        assert_eq!(with_opportunistic_tls("smtp://h:587"), "smtp://h:587?tls=opportunistic");
        assert_eq!(with_opportunistic_tls("smtp://h:587?tls=required"), "smtp://h:587?tls=required");
        assert_eq!(with_opportunistic_tls("smtps://h:465"), "smtps://h:465");
    }
}
