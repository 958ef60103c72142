use std::process::ExitCode;

use actix_web::rt::SystemRunner;
use frontdesk_server::config::{AgentCommand, Cli, Command, LogFormat, ServeConfig};
use frontdesk_server::{agent_cli, logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let runtime = actix_web::rt::System::new();
    match cli.command {
        Some(Command::Agent(AgentCommand::Create(args))) => {
            logging::init(LogFormat::Text);
            match runtime.block_on(agent_cli::create(args)) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("frontdesk: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Serve(config)) => serve(&runtime, config),
        None => serve(&runtime, cli.serve),
    }
}

fn serve(runtime: &SystemRunner, config: ServeConfig) -> ExitCode {
    logging::init(config.log_format);
    match runtime.block_on(server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "frontdesk failed");
            eprintln!("frontdesk: {error}");
            ExitCode::FAILURE
        }
    }
}
