//! Live sessions kept in memory, so an authenticated request is a JWT check and
//! a hash-map lookup instead of a database round trip.
//!
//! Revocation must stay immediate, so every change to a user or their sessions
//! is followed, after its transaction commits, by [`SessionCache::forget_user`]:
//! it drops the user's entries here and, when Redis is configured, on every
//! other instance through pub/sub. Entries also expire after
//! `SESSION_CACHE_TTL`, which bounds staleness when a message is lost (Redis
//! down, or a change made by another tool).
//!
//! Forgetting bumps a per-user generation instead of deleting entries, which
//! closes the race where a request reads the old row just before a change
//! commits and caches it just after the change was announced: that entry
//! carries the generation it read before the database, which is then stale.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::entity::user;

/// Most sessions held per instance (each about half a kilobyte).
const CAPACITY: u64 = 100_000;
/// Announcements waiting for Redis; beyond it they are dropped (the TTL still holds).
const OUTBOX: usize = 4_096;

/// What an authenticated request needs to know about its session.
#[derive(Clone, Debug)]
pub struct LiveSession {
    pub user: user::Model,
    pub session_id: Uuid,
    pub authenticated_at: DateTime<Utc>,
}

struct Entry {
    session: LiveSession,
    generation: u64,
    epoch: u64,
}

/// Taken before reading the database; a fill made with a stale stamp is never served.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    generation: u64,
    epoch: u64,
}

pub struct SessionCache {
    /// `None` when `SESSION_CACHE_TTL` is 0.
    entries: Option<Cache<Uuid, Arc<Entry>>>,
    /// The generation of each user changed recently; absent means 0. Kept for
    /// twice the TTL, longer than any entry filled before the change can live.
    generations: Cache<Uuid, u64>,
    next_generation: AtomicU64,
    /// Bumped to drop everything (after a gap in the invalidation feed).
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    announce: mpsc::Sender<Uuid>,
    announcements: Mutex<Option<mpsc::Receiver<Uuid>>>,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> Self {
        let entries = (!ttl.is_zero()).then(|| Cache::builder().max_capacity(CAPACITY).time_to_live(ttl).build());
        let (announce, announcements) = mpsc::channel(OUTBOX);
        Self {
            entries,
            generations: Cache::builder().time_to_live(ttl * 2 + Duration::from_secs(1)).build(),
            next_generation: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            announce,
            announcements: Mutex::new(Some(announcements)),
        }
    }

    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    fn generation(&self, user_id: Uuid) -> u64 {
        self.generations.get(&user_id).unwrap_or(0)
    }

    /// Call before reading the session from the database; pass it to [`Self::put`].
    pub fn stamp(&self, user_id: Uuid) -> Stamp {
        Stamp { epoch: self.epoch.load(Ordering::Acquire), generation: self.generation(user_id) }
    }

    pub fn get(&self, session_id: Uuid, user_id: Uuid) -> Option<LiveSession> {
        let entries = self.entries.as_ref()?;
        let found = entries
            .get(&session_id)
            .filter(|e| e.session.user.id == user_id)
            .filter(|e| e.epoch == self.epoch.load(Ordering::Acquire) && e.generation == self.generation(user_id));
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(|e| e.session.clone())
    }

    pub fn put(&self, stamp: Stamp, session: LiveSession) {
        if let Some(entries) = &self.entries {
            let entry = Entry { generation: stamp.generation, epoch: stamp.epoch, session };
            entries.insert(entry.session.session_id, Arc::new(entry));
        }
    }

    /// After a change to the user or any of their sessions has committed: no
    /// instance serves the cached state any more.
    pub fn forget_user(&self, user_id: Uuid) {
        self.forget_locally(user_id);
        // Full or not running (no Redis): the TTL bounds what the others serve.
        let _ = self.announce.try_send(user_id);
    }

    /// What another instance announced.
    pub fn forget_locally(&self, user_id: Uuid) {
        let generation = self.next_generation.fetch_add(1, Ordering::AcqRel);
        self.generations.insert(user_id, generation);
    }

    /// Drops every entry: announcements may have been missed.
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// (hits, misses) since start.
    pub fn counters(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// The queue of this instance's announcements, for the Redis relay (once).
    pub fn take_announcements(&self) -> Option<mpsc::Receiver<Uuid>> {
        self.announcements.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(user_id: Uuid, session_id: Uuid) -> LiveSession {
        let now = Utc::now();
        LiveSession {
            user: user::Model {
                id: user_id,
                email: "a@example.com".into(),
                password_hash: String::new(),
                full_name: None,
                role: crate::domain::Role::User,
                is_active: true,
                email_verified: false,
                mfa_enabled: false,
                created_at: now,
                updated_at: now,
                last_login_at: None,
            },
            session_id,
            authenticated_at: now,
        }
    }

    #[test]
    fn serves_what_it_was_given_to_the_right_user_only() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(cache.get(sid, user).is_none());
        cache.put(cache.stamp(user), live(user, sid));
        assert_eq!(cache.get(sid, user).unwrap().session_id, sid);
        assert!(cache.get(sid, Uuid::new_v4()).is_none(), "a token naming another user never matches");
        assert_eq!(cache.counters(), (1, 2));
    }

    #[test]
    fn forgetting_a_user_drops_only_their_sessions() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (a1, a2, b1) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for (user, sid) in [(alice, a1), (alice, a2), (bob, b1)] {
            cache.put(cache.stamp(user), live(user, sid));
        }
        cache.forget_user(alice);
        assert!(cache.get(a1, alice).is_none() && cache.get(a2, alice).is_none());
        assert!(cache.get(b1, bob).is_some());
        cache.forget_all();
        assert!(cache.get(b1, bob).is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_served() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let stamp = cache.stamp(user); // a request starts reading the old row...
        cache.forget_user(user); // ...a revocation commits and is announced...
        cache.put(stamp, live(user, sid)); // ...and the old row arrives
        assert!(cache.get(sid, user).is_none());
        cache.put(cache.stamp(user), live(user, sid));
        assert!(cache.get(sid, user).is_some(), "a read after the change is served");
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let cache = SessionCache::new(Duration::from_millis(50));
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        cache.put(cache.stamp(user), live(user, sid));
        assert!(cache.get(sid, user).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get(sid, user).is_none());

        let off = SessionCache::new(Duration::ZERO);
        assert!(!off.enabled());
        off.put(off.stamp(user), live(user, sid));
        assert!(off.get(sid, user).is_none());
    }
}
