//! Times one bcrypt hash at a cost (default 12) the way Latchkey hashes
//! passwords, with each implementation this machine has, and prints the login
//! bound: cores / time of one hash with the implementation Latchkey picks.
//!
//!     cargo run --release --example bcrypt_cost -- 12

use std::time::Instant;

use latchkey::auth::bcrypt_impl::Backend;

fn main() {
    let cost: u32 = std::env::args().nth(1).and_then(|c| c.parse().ok()).unwrap_or(12);
    let rounds = 8;
    let input = "0".repeat(64); // the SHA-256 hex prehash Latchkey feeds bcrypt
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chosen = Backend::detect();
    for backend in [Backend::Libxcrypt, Backend::Crate] {
        if backend.hash(&input, 4).is_err() {
            println!("{:>12}: not available here", backend.name());
            continue;
        }
        let start = Instant::now();
        for _ in 0..rounds {
            backend.hash(&input, cost).expect("bcrypt");
        }
        let per_hash = start.elapsed().as_secs_f64() / f64::from(rounds);
        let mark = if backend == chosen { "  <- used" } else { "" };
        println!(
            "{:>12}: cost {cost}: {:.1} ms per hash; bound on {cores} cores: {:.2} logins/s{mark}",
            backend.name(),
            per_hash * 1000.0,
            cores as f64 / per_hash
        );
    }
}
