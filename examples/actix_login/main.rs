//! `cargo run --example actix_login`: the latchkey login service on actix-web.
//!
//! The same service as `cargo run --example login` (the same routes, page, JSON errors, cookies,
//! CSRF and CORS rules; the route logic is shared in `latchkey_examples::login::routes`), served
//! by actix-web 4 through `latchkey::actix`. Listens on 127.0.0.1:3000 and keeps sessions in
//! memory, or in Redis when `REDIS_URL` is set, and accounts in `DATABASE_URL` (default the SQLite
//! file `./latchkey-login.db`); the environment variables are those of
//! `latchkey_examples::login::env`.
//!
//! Open <http://127.0.0.1:3000/> for the page; Ctrl-C stops the service gracefully.

use latchkey_examples::login::{self, actix::LoginApp, env};

fn main() -> std::process::ExitCode {
    env::init_tracing();
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("actix_login: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let (addr, config) = env::config()?;
    let (mut services, stores) = env::services().await?;
    env::attach_oidc(&mut services, addr, &config).await?;
    let app = LoginApp::new(services, &config).map_err(|e| e.to_string())?;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    env::print_banner("actix_login", local, &stores, &config);
    // Two workers: enough for a demo, and this machine is shared.
    login::actix::serve(listener, app, 2, true)
        .map_err(|e| format!("cannot serve on {local}: {e}"))?
        .await
        .map_err(|e| format!("server error: {e}"))
}
