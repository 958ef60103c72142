use std::process::ExitCode;

use clap::Parser;
use frontdesk_server::config::{Cli, Command};
use frontdesk_server::{logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    logging::init(config.log_format);
    let outcome = actix_web::rt::System::new().block_on(server::serve(config));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "frontdesk failed");
            eprintln!("frontdesk: {error}");
            ExitCode::FAILURE
        }
    }
}
