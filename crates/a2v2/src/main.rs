use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = a2v2::cli::Cli::parse();
    match a2v2::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
