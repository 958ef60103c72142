//! Starting and stopping the HTTP server.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use frontdesk_store::{Store, StoreConfig, Timeouts};

use crate::app::replies::Replies;
use crate::config::ServeConfig;
use crate::extract;
use crate::key_cache::KeyCache;
use crate::logging::log_request;
use crate::realtime::{tailer, teardown, Hub};
use crate::request_guard::{guard_requests, RequestGuard};
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
    #[error(transparent)]
    AdminToken(#[from] crate::admin_token::AdminTokenFileError),
    #[error("automated replies: {0}")]
    Replies(String),
    #[error("server stopped with an error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the database (running migrations), listens, and serves until SIGINT or SIGTERM. Then
/// it stops accepting, closes WebSockets with 1001, lets in-flight requests finish (30 s at
/// most) and returns.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let admin_token = crate::admin_token::load(&config)?;
    routes::partners::warn_if_open(config.registration);
    match crate::open_files::raise() {
        Some(limit) => tracing::info!(limit, "open-file limit (two per connection)"),
        None => tracing::warn!("cannot read the open-file limit"),
    }
    let mut store_config = StoreConfig::new(&config.database_url);
    store_config.max_connections = config.db_pool_size.max(1);
    let millis = |ms: u64| Duration::from_millis(ms.max(1));
    store_config.timeouts = Timeouts {
        statement: millis(config.db_statement_timeout_ms),
        lock: millis(config.db_lock_timeout_ms),
        sqlite_busy: millis(config.sqlite_busy_timeout_ms),
        append: millis(config.append_timeout_ms),
    };
    store_config.reply_lease = config.replies.enabled().then(|| config.replies.lease());
    let store = Store::open(&store_config).await?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let hub = Arc::new(Hub::new(config.ws_queue, config.ws_caps()));
    let keys = Arc::new(KeyCache::default());
    // The feed reads the log after every commit, through a connection of its own (opened
    // here, on the runtime that runs the tailer), like each worker and the writer; the
    // partner-domain refresh borrows it every 30 s rather than open another.
    let background = store.with_own_pool(1)?;
    let replies = if config.replies.enabled() {
        // Its jobs run on this runtime, through a pool of their own: as many connections as
        // the workers share (at most 16), since 500 jobs at once each make a dozen queries.
        let pool = config.db_pool_size.clamp(2, 16);
        let replies = Replies::start(store.with_own_pool(pool)?, &config.replies)
            .map_err(ServeError::Replies)?;
        match config.replies.llm() {
            Some(llm) => {
                tracing::info!(url = %llm.url, model = %llm.model, "automated replies by a model")
            }
            None => {
                tracing::info!("automated replies by the offline responder (no FRONTDESK_LLM_URL)")
            }
        }
        replies
    } else {
        tracing::info!("automated replies are off");
        Replies::off()
    };
    tailer::start(
        &background,
        Arc::clone(&hub),
        Arc::clone(&keys),
        Arc::clone(&replies),
    )
    .await?;

    let state = AppState::new(store, Arc::clone(&hub), keys, &config, admin_token, replies);
    // Before listening, so the first preflight already knows every partner's domain.
    state.origins.refresh(&background).await?;
    state.origins.keep_fresh(background);
    let origins = Arc::clone(&state.origins);
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pools = Arc::new(PoolSplit::new(config.db_pool_size.max(1), workers));
    let guard = RequestGuard::new(
        millis(config.body_timeout_ms),
        config.max_requests_per_address,
        config.trusted_proxies.clone().into(),
    );
    if workers > pools.total {
        tracing::warn!(
            workers,
            pool_size = pools.total,
            "more workers than database connections: each worker still gets one"
        );
    }
    let server = HttpServer::new(move || {
        // Runs on each worker's own thread, so its store's connections are driven there; and
        // once per bound address, so the state is made once per thread.
        let state = WORKER_STATE.with(|cell| {
            cell.get_or_init(|| web::Data::new(state.for_worker(pools.next())))
                .clone()
        });
        App::new()
            .app_data(state)
            .app_data(web::Data::from(Arc::clone(&guard)))
            .app_data(extract::json_config())
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            // Innermost, so the log and the guards see the method as sent.
            .wrap(from_fn(crate::head::head_as_get))
            .wrap(crate::cors::cors(Arc::clone(&origins)))
            .wrap(from_fn(guard_requests))
            .wrap(from_fn(log_request))
            .configure(routes::configure)
            .default_service(web::to(extract::not_found))
    })
    // WebSocket tasks end their TCP connections themselves (realtime::teardown).
    .on_connect(teardown::remember_socket)
    // Our own handler below makes SIGINT as graceful as SIGTERM and closes WebSockets first.
    .disable_signals()
    // The head deadline: actix answers 408 and closes a connection whose head is not in
    // within it (and closes an idle keep-alive connection after it).
    .client_request_timeout(millis(config.head_timeout_ms))
    .keep_alive(millis(config.head_timeout_ms))
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

thread_local! {
    /// This worker thread's state, with its own database pool (`AppState::for_worker`).
    static WORKER_STATE: OnceCell<web::Data<AppState>> = const { OnceCell::new() };
}

/// The instance's database connections shared out between its workers: `total` in all, the
/// remainder going one each to the first workers, and at least one per worker.
struct PoolSplit {
    total: usize,
    workers: usize,
    handed_out: AtomicUsize,
}

impl PoolSplit {
    fn new(total: usize, workers: usize) -> Self {
        Self {
            total,
            workers: workers.max(1),
            handed_out: AtomicUsize::new(0),
        }
    }

    /// The next worker's share.
    fn next(&self) -> usize {
        let worker = self.handed_out.fetch_add(1, Ordering::Relaxed) % self.workers;
        let share = self.total / self.workers + usize::from(worker < self.total % self.workers);
        share.max(1)
    }
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

#[cfg(test)]
mod tests {
    use super::PoolSplit;

    fn shares(total: usize, workers: usize) -> Vec<usize> {
        let split = PoolSplit::new(total, workers);
        (0..workers).map(|_| split.next()).collect()
    }

    #[test]
    fn the_workers_share_exactly_the_configured_connections() {
        assert_eq!(shares(16, 2), [8, 8]);
        assert_eq!(shares(16, 3), [6, 5, 5]);
        assert_eq!(shares(5, 4), [2, 1, 1, 1]);
        for (total, workers) in [(16, 5), (16, 7), (3, 3), (100, 32)] {
            assert_eq!(shares(total, workers).iter().sum::<usize>(), total);
        }
    }

    #[test]
    fn every_worker_gets_a_connection_when_there_are_fewer_than_workers() {
        assert_eq!(shares(2, 4), [1, 1, 1, 1]);
    }
}
