//! The login services' configuration from the environment, shared by `login` (axum) and
//! `actix_login` (actix-web), which take the same variables:
//!
//! | variable        | meaning                                                                   |
//! |-----------------|---------------------------------------------------------------------------|
//! | `BIND`, `PORT`  | address and port to listen on (default `127.0.0.1`, `3000`)               |
//! | `COOKIE_SECURE` | `1` to mark the session cookie `Secure` — required in production (HTTPS); |
//! |                 | off by default here only because the demo is served over plain `http://`  |
//! | `COOKIE_SAMESITE` | `lax` (default), `strict`, or `none` for a cross-site front end (needs `COOKIE_SECURE=1`) |
//! | `CORS_ORIGINS`  | comma-separated origins of a front end allowed to call the API with cookies |
//! | `SESSION_KEY`   | base64url secret (≥ 32 bytes) that signs cookies; random per start if unset |
//! | `REDIS_URL`     | e.g. `redis://127.0.0.1:6379/0`: keep sessions in Redis instead of memory  |
//! | `MAX_SESSIONS_PER_USER` | live sessions per account (default 10); `1`: one device at a time, a new login signs the old device out |
//! | `DATABASE_URL`  | the accounts: a SQLite file path or `sqlite:` URL (default `./latchkey-login.db`, created with its schema), or a `postgres://` URL |
//! | `CLIENT_IP_HEADER` | behind a reverse proxy: the header whose last entry is the client address for the login throttle (e.g. `X-Forwarded-For`); default the peer address |
//! | `OIDC_ISSUER`   | "Sign in with …": the provider's issuer (discovery at `{issuer}/.well-known/openid-configuration`); with none of the `OIDC_` variables set, an in-process mock provider is started so the button works out of the box |
//! | `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET` | the client registration at that provider (the secret is optional: a public client relies on PKCE) |
//! | `OIDC_REDIRECT_URI` | the callback URL registered with the provider (default `http://{BIND}:{PORT}/oidc/callback`) |
//! | `OIDC_NAME`     | the provider's name on the button (default: the issuer's host)              |
//! | `RUST_LOG`      | log filter (default `info`)                                                |

use std::net::SocketAddr;

use base64::Engine as _;
use latchkey::session::{CookieKey, SameSite};

use super::{LoginConfig, Services, Users};

/// The environment variable `name`, if set and not blank.
#[must_use]
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn flag(name: &str) -> Result<bool, String> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(format!(
            "{name}={other:?}: expected 1/0, true/false, yes/no or on/off"
        )),
    }
}

fn cookie_key() -> Result<CookieKey, String> {
    let secret = match var("SESSION_KEY") {
        Some(text) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| "SESSION_KEY is not base64url".to_owned())?,
        None => {
            let mut secret = vec![0u8; 32];
            argon2::password_hash::rand_core::RngCore::fill_bytes(
                &mut argon2::password_hash::rand_core::OsRng,
                &mut secret,
            );
            secret
        }
    };
    CookieKey::from_secret(&secret).map_err(|e| format!("SESSION_KEY: {e}"))
}

/// The listening address and the service configuration from the environment (the table in
/// the examples' docs).
///
/// # Errors
/// A message naming the variable that is wrong.
pub fn config() -> Result<(SocketAddr, LoginConfig), String> {
    let bind = var("BIND").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = match var("PORT") {
        Some(port) => port
            .trim()
            .parse()
            .map_err(|_| format!("PORT={port:?} is not a port number"))?,
        None => 3000,
    };
    let ip: std::net::IpAddr = bind
        .trim()
        .parse()
        .map_err(|_| format!("BIND={bind:?} is not an IP address"))?;
    let mut config = LoginConfig::new(cookie_key()?);
    config.cookie_secure = flag("COOKIE_SECURE")?;
    config.same_site = match var("COOKIE_SAMESITE")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(other) => {
            return Err(format!(
                "COOKIE_SAMESITE={other:?}: expected lax, strict or none"
            ))
        }
    };
    if config.same_site == SameSite::None && !config.cookie_secure {
        return Err("COOKIE_SAMESITE=none needs COOKIE_SECURE=1 (browsers drop SameSite=None cookies that are not Secure)".to_owned());
    }
    config.cors_origins = var("CORS_ORIGINS")
        .map(|list| {
            list.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(max) = var("MAX_SESSIONS_PER_USER") {
        config.max_sessions_per_user = match max.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "MAX_SESSIONS_PER_USER={max:?}: expected a whole number of at least 1"
                ))
            }
        };
    }
    if let Some(name) = var("CLIENT_IP_HEADER") {
        config.client_ip_header = Some(
            http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("CLIENT_IP_HEADER={name:?} is not a header name"))?,
        );
    }
    Ok((SocketAddr::new(ip, port), config))
}

/// Opens what the service runs on, from `REDIS_URL` and `DATABASE_URL`: the session and
/// throttle stores ([`super::stores`]), the account database (migrated at start), the
/// argon2 slots and the default login throttle. Returns them with a description for the
/// start-up banner (URLs without passwords).
///
/// # Errors
/// A message naming the variable that is wrong, or the database that cannot be opened.
pub async fn services() -> Result<(Services, String), String> {
    let stores = super::stores(var("REDIS_URL").as_deref())?;
    let database_url = var("DATABASE_URL");
    let accounts = crate::accounts::open(database_url.as_deref())
        .await
        .map_err(|e| {
            let detail = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("DATABASE_URL: {e}{detail}")
        })?;
    let database = format!(
        "{} at {}",
        accounts.backend(),
        super::redact_url(
            database_url
                .as_deref()
                .unwrap_or(crate::accounts::DEFAULT_DATABASE)
        )
    );
    let users = Users::new(accounts).map_err(|e| format!("argon2: {e}"))?;
    let throttle = super::default_throttle(stores.throttle).map_err(|e| e.to_string())?;
    let description = format!(
        "session store: {}\naccounts: {database}",
        stores.description
    );
    Ok((
        Services {
            users,
            throttle,
            sessions: stores.sessions,
            oidc: None,
        },
        description,
    ))
}

/// "Sign in with …" from `OIDC_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`,
/// `OIDC_REDIRECT_URI` and `OIDC_NAME`: the provider's discovery document is fetched and
/// checked now, so a wrong issuer stops the service at start rather than at the first
/// sign-in. With none of them set, the in-process demo provider of [`demo_provider`].
///
/// # Errors
/// A message naming the variable that is missing or wrong, or why discovery failed.
pub async fn oidc(
    addr: SocketAddr,
    config: &LoginConfig,
    sessions: std::sync::Arc<dyn latchkey::session::SessionStore>,
) -> Result<Option<super::oidc::OidcSignIn>, String> {
    let redirect_uri =
        var("OIDC_REDIRECT_URI").unwrap_or_else(|| format!("http://{addr}/oidc/callback"));
    let Some(issuer) = var("OIDC_ISSUER") else {
        if var("OIDC_CLIENT_ID").is_some() || var("OIDC_CLIENT_SECRET").is_some() {
            return Err("OIDC_CLIENT_ID/OIDC_CLIENT_SECRET are set but OIDC_ISSUER is not".into());
        }
        return demo_provider(&redirect_uri, config, sessions)
            .await
            .map(Some);
    };
    let client_id =
        var("OIDC_CLIENT_ID").ok_or("OIDC_ISSUER is set: OIDC_CLIENT_ID is required")?;
    let http = std::sync::Arc::new(
        latchkey_oauth::ReqwestClient::new().map_err(|e| format!("HTTP client: {e}"))?,
    );
    let metadata = latchkey_oauth::ProviderMetadata::discover(http.as_ref(), &issuer)
        .await
        .map_err(|e| format!("OIDC_ISSUER={issuer}: {e}"))?;
    let mut builder = latchkey_oauth::OidcClient::builder(
        http,
        metadata,
        client_id,
        redirect_uri,
        std::sync::Arc::clone(&sessions),
    );
    if issuer == latchkey_oauth::GOOGLE_ISSUER {
        builder = builder.issuer_alias("accounts.google.com");
    }
    if let Some(secret) = var("OIDC_CLIENT_SECRET") {
        builder = builder.client_secret(secret);
    }
    if !config.cookie_secure {
        builder = builder.transactions(
            latchkey_oauth::Transactions::new(sessions).insecure_for_http_development(),
        );
    }
    let client = builder.build().map_err(|e| format!("OIDC: {e}"))?;
    let name = var("OIDC_NAME").unwrap_or_else(|| {
        issuer
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split(['/', ':'])
            .next()
            .unwrap_or("your provider")
            .to_owned()
    });
    Ok(Some(super::oidc::OidcSignIn {
        client,
        name,
        keep_alive: None,
    }))
}

/// The demo provider: an in-process [`MockOidc`](latchkey_testkit::oidc::MockOidc) on a free
/// loopback port that signs everyone in as one demo user, so that `cargo run --example login`
/// shows the whole "Sign in with …" flow with nothing to register. The relying party is the
/// same code a real provider gets (discovery, PKCE, the key set, every ID-token check).
///
/// # Errors
/// A message when the mock's discovery document is refused (never expected).
pub async fn demo_provider(
    redirect_uri: &str,
    config: &LoginConfig,
    sessions: std::sync::Arc<dyn latchkey::session::SessionStore>,
) -> Result<super::oidc::OidcSignIn, String> {
    let mock = latchkey_testkit::oidc::MockOidc::builder()
        .client("latchkey-login-demo", "demo-secret")
        .redirect_uri(redirect_uri)
        .start()
        .await;
    mock.sign_in_as("demo-user-1", "demo@example.com", true);
    sign_in_with_mock(
        std::sync::Arc::new(mock),
        "Demo provider",
        redirect_uri,
        config,
        sessions,
    )
    .await
}

/// "Sign in with `name`" against `mock` (registered with `redirect_uri`), kept alive by the
/// result: the relying party a real provider gets, on the mock's discovery document and its
/// client registration. The demo provider, and the tests' provider.
///
/// # Errors
/// A message when the mock's discovery document is refused (never expected).
pub async fn sign_in_with_mock(
    mock: std::sync::Arc<latchkey_testkit::oidc::MockOidc>,
    name: &str,
    redirect_uri: &str,
    config: &LoginConfig,
    sessions: std::sync::Arc<dyn latchkey::session::SessionStore>,
) -> Result<super::oidc::OidcSignIn, String> {
    let http = mock.http_client();
    let metadata = latchkey_oauth::ProviderMetadata::discover(http.as_ref(), mock.issuer())
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let mut builder = latchkey_oauth::OidcClient::builder(
        http,
        metadata,
        mock.client_id(),
        redirect_uri,
        std::sync::Arc::clone(&sessions),
    )
    .client_secret(mock.client_secret());
    if !config.cookie_secure {
        builder = builder.transactions(
            latchkey_oauth::Transactions::new(sessions).insecure_for_http_development(),
        );
    }
    let client = builder.build().map_err(|e| format!("{name}: {e}"))?;
    Ok(super::oidc::OidcSignIn {
        client,
        name: name.to_owned(),
        keep_alive: Some(mock),
    })
}

/// Sets `services.oidc` from the environment ([`oidc`]) and says on stdout which provider
/// "Sign in with …" uses; both servers' `main` call it.
///
/// # Errors
/// As [`oidc`].
pub async fn attach_oidc(
    services: &mut Services,
    addr: SocketAddr,
    config: &LoginConfig,
) -> Result<(), String> {
    services.oidc = oidc(addr, config, std::sync::Arc::clone(&services.sessions)).await?;
    if let Some(oidc) = &services.oidc {
        println!(
            "sign in with {}: {} (set OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET for a real provider)",
            oidc.name,
            oidc.client.metadata().issuer
        );
    }
    Ok(())
}

/// Logs to stderr with `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// The start-up banner: where the service listens, its store, and the settings worth a warning.
pub fn print_banner(name: &str, local: SocketAddr, stores: &str, config: &LoginConfig) {
    println!("latchkey {name} example listening on http://{local}/");
    println!("{stores}");
    println!(
        "sessions per account: at most {} (MAX_SESSIONS_PER_USER); a new login beyond it signs the oldest device out",
        config.max_sessions_per_user
    );
    if var("REDIS_URL").is_some() && var("SESSION_KEY").is_none() {
        println!("note: SESSION_KEY is unset, so cookies signed before a restart are refused; set it to keep sessions across restarts");
    }
    if !config.cookie_secure {
        println!("cookie Secure flag: off (plain-http demo); set COOKIE_SECURE=1 behind HTTPS, as production must");
    }
    if !config.cors_origins.is_empty() {
        println!(
            "CORS origins allowed with credentials: {}",
            config.cors_origins.join(", ")
        );
    }
}
