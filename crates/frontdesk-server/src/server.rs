//! Starting and stopping the HTTP server.

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use frontdesk_store::{Store, StoreConfig};

use crate::config::ServeConfig;
use crate::extract;
use crate::logging::log_request;
use crate::routes;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] frontdesk_store::StoreError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("server stopped with an error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the database (running migrations), listens, and serves until SIGINT or SIGTERM;
/// then stops accepting, lets in-flight requests finish and returns.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let mut store_config = StoreConfig::new(&config.database_url);
    store_config.max_connections = config.db_pool_size.max(1);
    let store = Store::open(&store_config).await?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let state = web::Data::new(AppState::new(store, &config));
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(extract::json_config())
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            .wrap(from_fn(log_request))
            .configure(routes::configure)
            .default_service(web::to(extract::not_found))
    })
    .shutdown_timeout(30);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = server
        .bind(&config.bind)
        .map_err(|source| ServeError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening on http://{addr}");
    }
    server.run().await?;
    tracing::info!("stopped");
    Ok(())
}
