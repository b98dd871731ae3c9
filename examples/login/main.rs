//! `cargo run --example login`: the latchkey login service on axum.
//!
//! Listens on 127.0.0.1:3000 and keeps sessions in memory, or in Redis when `REDIS_URL` is set
//! (the store is chosen once at start-up; the handlers are the same). The environment variables
//! are those of `latchkey_examples::login::env` (`BIND`, `PORT`, `COOKIE_SECURE`,
//! `COOKIE_SAMESITE`, `CORS_ORIGINS`, `SESSION_KEY`, `REDIS_URL`, `RUST_LOG`); `actix_login` is
//! the same service on actix-web.
//!
//! Open <http://127.0.0.1:3000/> for the page; Ctrl-C stops the service gracefully.

use latchkey_examples::login::{self, env, Users};

async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler could be installed: run until killed.
        std::future::pending::<()>().await;
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
    let (store, store_name) = login::session_store(env::var("REDIS_URL").as_deref())?;
    let users = Users::new().map_err(|e| format!("argon2: {e}"))?;
    let app = login::router(store, users, &config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    env::print_banner("login", local, &store_name, &config);
    login::serve(listener, app, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}
