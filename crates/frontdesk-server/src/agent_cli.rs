//! `frontdesk agent create --email E --name N [--admin] --password-stdin`.

use std::io::Read;

use frontdesk_domain::NewAgent;
use frontdesk_store::{Store, StoreConfig};

use crate::config::AgentCreate;

#[derive(Debug, thiserror::Error)]
pub enum AgentCliError {
    #[error("cannot read the password from standard input: {0}")]
    Stdin(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(#[from] frontdesk_domain::ValidationError),
    #[error(transparent)]
    Store(#[from] frontdesk_store::StoreError),
}

/// Creates the agent and returns it as JSON (with its numeric `id`).
pub async fn create(args: AgentCreate) -> Result<String, AgentCliError> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    // One trailing newline comes from `echo` or a terminal, not from the password.
    let password = password
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&password)
        .to_owned();
    let signup = NewAgent {
        email: args.email,
        name: args.name,
        password,
        is_admin: args.admin,
    }
    .validate(&mut rand::rng())?;
    let store = Store::open(&StoreConfig::new(&args.database_url)).await?;
    let agent = store.create_agent(&signup).await?;
    Ok(serde_json::to_string(&agent).unwrap_or_default())
}
