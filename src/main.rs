//! The `latchkey` binary: all the work is in the library (`latchkey::cli`).

fn main() {
    latchkey::memory::use_fewer_arenas();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    if let Err(err) = runtime.block_on(latchkey::cli::run()) {
        eprintln!("latchkey: {err:#}");
        std::process::exit(1);
    }
}
