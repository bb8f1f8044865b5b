//! Memory of the in-process rate limiters before, while and after holding
//! 100,000 client addresses, then under a flood of 1,000,000 distinct IPv6
//! /64s against the key cap (`RATE_LIMIT_MAX_KEYS`, 100,000 by default), with
//! a fake clock standing in for the minute it takes budgets to refill.
//!
//!     cargo run --release --example limiter_memory

use std::{net::IpAddr, time::Duration};

use governor::clock::FakeRelativeClock;
use latchkey::{
    auth::ratelimit::{Limit, LocalLimiters},
    config::Config,
};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let clock = FakeRelativeClock::default();
    let limiters = LocalLimiters::with_clock(&Config::default(), clock.clone());
    println!("before:            {:>8} KiB RSS, {:>6} keys", rss_kib(), limiters.tracked_keys());
    for i in 0..100_000u32 {
        let _ = limiters.check(Limit::Login, Some(IpAddr::from((0x0a00_0000 + i).to_be_bytes())));
    }
    println!("100,000 addresses: {:>8} KiB RSS, {:>6} keys", rss_kib(), limiters.tracked_keys());
    clock.advance(Duration::from_secs(61));
    limiters.prune();
    println!("after prune:       {:>8} KiB RSS, {:>6} keys", rss_kib(), limiters.tracked_keys());
    for i in 0..1_000_000u64 {
        let ip = std::net::Ipv6Addr::from(u128::from(0x2001_0db8_0000_0000u64 + i) << 64);
        let _ = limiters.check(Limit::Login, Some(IpAddr::V6(ip)));
    }
    println!("1,000,000 /64s:    {:>8} KiB RSS, {:>6} keys (cap)", rss_kib(), limiters.tracked_keys());
}
