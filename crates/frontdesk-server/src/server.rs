//! Starting and stopping the HTTP server.

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use frontdesk_store::{Store, StoreConfig};

use crate::config::ServeConfig;
use crate::extract;
use crate::logging::log_request;
use crate::realtime::{tailer, Hub};
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

/// Opens the database (running migrations), listens, and serves until SIGINT or SIGTERM. Then
/// it stops accepting, closes WebSockets with 1001, lets in-flight requests finish (30 s at
/// most) and returns.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let mut store_config = StoreConfig::new(&config.database_url);
    store_config.max_connections = config.db_pool_size.max(1);
    let store = Store::open(&store_config).await?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let hub = Arc::new(Hub::new(config.ws_queue));
    tailer::start(&store, Arc::clone(&hub)).await?;

    let state = AppState::new(store, Arc::clone(&hub), &config);
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pool_per_worker = config.db_pool_size.max(1).div_ceil(workers);
    let server = HttpServer::new(move || {
        // Runs on each worker's own thread, so its store's connections are driven there.
        let state = web::Data::new(state.for_worker(pool_per_worker));
        App::new()
            .app_data(state)
            .app_data(extract::json_config())
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            .wrap(from_fn(log_request))
            .configure(routes::configure)
            .default_service(web::to(extract::not_found))
    })
    // Our own handler below makes SIGINT as graceful as SIGTERM and closes WebSockets first.
    .disable_signals()
    .shutdown_timeout(30)
    .workers(workers);
    let server = server
        .bind(&config.bind)
        .map_err(|source| ServeError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening on http://{addr}");
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: closing WebSockets, finishing in-flight requests");
        hub.shutdown();
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
