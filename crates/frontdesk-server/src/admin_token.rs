//! Where the admin token comes from: FRONTDESK_ADMIN_TOKEN, a file named by
//! --admin-token-file / FRONTDESK_ADMIN_TOKEN_FILE, or (discouraged: it shows in `ps`) the
//! --admin-token flag. Only its digest is kept.

use std::path::PathBuf;

use frontdesk_domain::{Secret, SecretHash};

use crate::config::ServeConfig;

#[derive(Debug, thiserror::Error)]
#[error("cannot read the admin token file {path}: {source}")]
pub struct AdminTokenFileError {
    path: PathBuf,
    source: std::io::Error,
}

/// The admin token's digest, if one is configured; warns when it was given as a flag.
pub fn load(config: &ServeConfig) -> Result<Option<SecretHash>, AdminTokenFileError> {
    if config.admin_token_on_command_line {
        tracing::warn!(
            "the admin token was given with --admin-token, so any local user can read it in \
             `ps`: pass it in FRONTDESK_ADMIN_TOKEN or a file (--admin-token-file) instead"
        );
    }
    let token = match &config.admin_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| AdminTokenFileError {
                path: path.clone(),
                source,
            })?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        None => config.admin_token.clone(),
    };
    Ok(token
        .filter(|token| !token.is_empty())
        .map(|token| Secret::presented(&token).hash()))
}
