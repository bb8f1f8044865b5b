//! The in-process state behind every governor limiter: one GCRA "theoretical
//! arrival time" per key, with a hard cap on the number of keys, and a refund
//! (a successful login gives back the cell its attempt spent).
//!
//! Why a cap and what it evicts: a flood of distinct addresses must not grow
//! memory without bound, and it must not lock out people who have never been
//! seen (refusing new keys when full would do exactly that). So when the store
//! is full, it forgets the keys with the most budget left: they are the closest
//! to a fresh key, so forgetting one changes at most one cell of its budget,
//! while keys that are actually being limited stay limited.

use std::{
    hash::Hash,
    num::NonZeroU64,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use dashmap::DashMap;
use governor::{
    nanos::Nanos,
    state::{StateStore, keyed::ShrinkableKeyedStateStore},
};

/// The share of keys dropped at once when the store is full, so a flood pays
/// for one scan per this many new keys, not one per key.
const EVICT_FRACTION: usize = 10;

/// A cheap handle: clones share one map (the limiter holds one, the code that
/// refunds holds another).
pub struct CappedStore<K: Hash + Eq> {
    inner: Arc<Inner<K>>,
}

struct Inner<K: Hash + Eq> {
    /// 0 means "no state yet", as in governor's own store.
    map: DashMap<K, AtomicU64>,
    max_keys: usize,
}

impl<K: Hash + Eq> Clone for CappedStore<K> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<K: Hash + Eq + Clone> CappedStore<K> {
    pub fn new(max_keys: usize) -> Self {
        Self { inner: Arc::new(Inner { map: DashMap::new(), max_keys: max_keys.max(EVICT_FRACTION) }) }
    }

    /// Gives back `cell` of `key`'s budget (one emission interval), if it has any state.
    pub fn refund(&self, key: &K, cell: Nanos) {
        if let Some(state) = self.inner.map.get(key) {
            let _ = state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(Nanos::from(tat).saturating_sub(cell).as_u64().max(1))
            });
        }
    }

    fn evict_most_refilled(&self) {
        let map = &self.inner.map;
        let mut arrivals: Vec<u64> = map.iter().map(|e| e.value().load(Ordering::Relaxed)).collect();
        let drop = (arrivals.len() / EVICT_FRACTION).max(1);
        if arrivals.len() < drop {
            return;
        }
        let (_, threshold, _) = arrivals.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        let mut dropped = 0;
        map.retain(|_, state| {
            let keep = dropped >= drop || state.load(Ordering::Relaxed) > threshold;
            dropped += usize::from(!keep);
            keep
        });
    }
}

fn measure<T, E>(state: &AtomicU64, f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>) -> Result<T, E> {
    // The same compare-and-swap loop as governor's own in-memory state.
    let mut prev = state.load(Ordering::Acquire);
    let mut decision = f(NonZeroU64::new(prev).map(|n| n.get().into()));
    while let Ok((result, new)) = decision {
        match state.compare_exchange_weak(prev, new.into(), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Ok(result),
            Err(next) => prev = next,
        }
        decision = f(NonZeroU64::new(prev).map(|n| n.get().into()));
    }
    decision.map(|(result, _)| result)
}

impl<K: Hash + Eq + Clone> StateStore for CappedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.inner.map.get(key) {
            return measure(&state, f);
        }
        if self.inner.map.len() >= self.inner.max_keys {
            self.evict_most_refilled();
        }
        let state = self.inner.map.entry(key.clone()).or_insert_with(|| AtomicU64::new(0)).downgrade();
        measure(&state, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for CappedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.inner.map.retain(|_, state| Nanos::from(state.load(Ordering::Relaxed)) > drop_below);
    }

    fn shrink_to_fit(&self) {
        self.inner.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.inner.map.len()
    }

    fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }
}
