//! The `latchkey` binary: all the work is in the library (`latchkey::cli`).

#[tokio::main]
async fn main() {
    if let Err(err) = latchkey::cli::run().await {
        eprintln!("latchkey: {err:#}");
        std::process::exit(1);
    }
}
