//! The `latchkey` binary: all the work is in the library (`latchkey::cli`).

// glibc's malloc gives each thread that allocates its own arena and returns
// little of it, so RSS climbs with every worker and hashing thread that ever
// ran; mimalloc, told to commit memory only as it is used and to return freed
// pages at once, keeps it flat and is faster on the small allocations a
// request makes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    return_memory_promptly();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    if let Err(err) = runtime.block_on(latchkey::cli::run()) {
        eprintln!("latchkey: {err:#}");
        std::process::exit(1);
    }
}

/// `MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_PURGE_DELAY=0` unless the
/// environment says otherwise: before any thread starts, so every arena and
/// every purge sees them.
fn return_memory_promptly() {
    use libmimalloc_sys::{mi_option_set, mi_option_t};
    // The option numbers of mimalloc 3's `mi_option_e` (mimalloc.h).
    const ARENA_EAGER_COMMIT: mi_option_t = 4;
    const PURGE_DELAY: mi_option_t = 15;
    for (option, name) in [(ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"), (PURGE_DELAY, "MIMALLOC_PURGE_DELAY")] {
        if std::env::var_os(name).is_none() {
            // SAFETY: plain setters of the allocator's options, called before any other thread exists.
            unsafe { mi_option_set(option, 0) };
        }
    }
}
