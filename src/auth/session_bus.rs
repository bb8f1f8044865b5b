//! Carries session-cache invalidations between instances over Redis pub/sub.
//!
//! Each instance publishes the users whose sessions changed and subscribes to
//! everyone's. A message lost while Redis is unreachable is covered twice:
//! entries expire after `SESSION_CACHE_TTL`, and an instance that
//! (re)subscribes drops its whole cache, since it cannot know what it missed.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use redis::{
    AsyncTypedCommands, Client,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::session_cache::SessionCache;

const CHANNEL: &str = "latchkey:session-changed";
const TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// A subscription that cannot answer a ping this often is presumed dead.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Runs until the process stops: relays this instance's announcements to
/// Redis and the others' to the cache.
pub async fn run(cache: Arc<SessionCache>, client: Client) {
    let Some(outgoing) = cache.take_announcements() else {
        return; // already running for this cache
    };
    let instance = Uuid::new_v4();
    tokio::join!(publish(outgoing, client.clone(), instance), subscribe(&cache, &client, instance));
}

async fn publish(mut outgoing: mpsc::Receiver<Uuid>, client: Client, instance: Uuid) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1);
    let mut conn: Option<ConnectionManager> = None;
    while let Some(user_id) = outgoing.recv().await {
        if conn.is_none() {
            conn = ConnectionManager::new_with_config(client.clone(), config.clone()).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            tracing::debug!("session change not announced: Redis unavailable");
            continue;
        };
        let message = format!("{instance} {user_id}");
        if let Err(e) = tokio::time::timeout(TIMEOUT, c.publish(CHANNEL, message))
            .await
            .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "redis timed out"))))
        {
            tracing::warn!(error = %e, "session change not announced to other instances");
            conn = None;
        }
    }
}

async fn subscribe(cache: &SessionCache, client: &Client, instance: Uuid) {
    let mut warned = false;
    loop {
        match listen(cache, client, instance).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(error = %e, "not receiving session changes from other instances; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        // Whatever was announced while we were not listening is unknown.
        cache.forget_all();
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// One subscription, until it fails.
async fn listen(cache: &SessionCache, client: &Client, instance: Uuid) -> redis::RedisResult<()> {
    let pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "redis timed out")))??;
    let (mut sink, mut messages) = pubsub.split();
    sink.subscribe(CHANNEL).await?;
    cache.forget_all();
    tracing::info!("receiving session changes from other instances");
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return Ok(()) };
                let payload: String = message.get_payload()?;
                match parse(&payload) {
                    Some((from, _)) if from == instance => {}
                    Some((_, user_id)) => cache.forget_locally(user_id),
                    None => tracing::warn!("ignoring a malformed message on {CHANNEL}"),
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(redis::RedisError::from((redis::ErrorKind::Io, "redis ping timed out"))),
                }
            }
        }
    }
}

fn parse(payload: &str) -> Option<(Uuid, Uuid)> {
    let (from, user) = payload.split_once(' ')?;
    Some((from.parse().ok()?, user.parse().ok()?))
}
