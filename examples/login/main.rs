//! `cargo run --example login`: the latchkey login service on axum.
//!
//! Listens on 127.0.0.1:3000, keeps accounts in the SQLite file `./latchkey-login.db` (or the
//! database `DATABASE_URL` names: a file path or a `postgres://` URL) and sessions and login
//! budgets in memory, or in Redis when `REDIS_URL` is set (the stores are chosen once at
//! start-up; the handlers are the same). The environment variables are those of
//! `latchkey_examples::login::env` (`BIND`, `PORT`, `COOKIE_SECURE`, `COOKIE_SAMESITE`,
//! `CORS_ORIGINS`, `SESSION_KEY`, `REDIS_URL`, `DATABASE_URL`, `MAX_SESSIONS_PER_USER`,
//! `CLIENT_IP_HEADER`, `RUST_LOG`); `actix_login` is the same service on actix-web.
//!
//! Open <http://127.0.0.1:3000/> for the page; Ctrl-C or SIGTERM stops the service gracefully.

use latchkey_examples::login::{self, env};

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM — what `docker stop`, systemd and
/// Kubernetes send before they kill a service.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: wait for the other signal.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("shutting down: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    env::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("login: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let (addr, config) = env::config()?;
    let (mut services, stores) = env::services().await?;
    env::attach_oidc(&mut services, addr, &config).await?;
    let app = login::router(services, &config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    env::print_banner("login", local, &stores, &config);
    login::serve(listener, app, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}
