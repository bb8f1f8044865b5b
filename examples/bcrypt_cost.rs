//! Times bcrypt at a cost (default 12) the way Latchkey hashes passwords, and
//! prints the machine's login bound: cores / time of one hash.
//!
//!     cargo run --release --example bcrypt_cost -- 12

use std::time::Instant;

fn main() {
    let cost: u32 = std::env::args().nth(1).and_then(|c| c.parse().ok()).unwrap_or(12);
    let rounds = 8;
    let input = "0".repeat(64); // the SHA-256 hex prehash Latchkey feeds bcrypt
    let start = Instant::now();
    for _ in 0..rounds {
        bcrypt::hash(&input, cost).expect("bcrypt");
    }
    let per_hash = start.elapsed().as_secs_f64() / f64::from(rounds);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("bcrypt cost {cost}: {:.1} ms per hash", per_hash * 1000.0);
    println!("bound on {cores} cores: {:.1} logins/s", cores as f64 / per_hash);
}
