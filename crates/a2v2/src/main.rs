use clap::Parser;

// Request handling allocates many small, short-lived objects; mimalloc serves them with far
// less contention and overhead than the system allocator (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the process waits, once done, for threads still running blocking work. An
/// extraction still running when the server stops has already had its job handed back to
/// the queue (`Documents::stop`); finishing it would only delay the exit.
const BLOCKING_WORK_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    let cli = a2v2::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(a2v2::cli::run(cli));
    runtime.shutdown_timeout(BLOCKING_WORK_AT_EXIT);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
