//! `cargo run --example jwt_api`: a JSON API with access/refresh tokens.
//!
//! Listens on `127.0.0.1:3001` (`PORT` to change) with the demo users `alice` and `bob`
//! (password `password`). Keeps token state in memory, or in Redis when `REDIS_URL` is set.
//! `ACCESS_KEY` and `REFRESH_KEY` (base64url, ≥ 32 bytes) are the signing secrets; random per
//! start when unset (every token then dies with the process).
//!
//! ```text
//! curl -s -XPOST localhost:3001/login -H 'content-type: application/json' \
//!      -d '{"username":"alice","password":"password","client":"mobile"}'
//! curl -s localhost:3001/me -H "authorization: Bearer $ACCESS"
//! curl -s -XPOST localhost:3001/refresh -H 'content-type: application/json' \
//!      -d "{\"refresh_token\":\"$REFRESH\"}"
//! ```
//!
//! For manual testing without a login, `cargo run --example jwt -- mint-pair --sub alice
//! --redis-url $REDIS_URL` mints a pair into the same Redis (with the same `ACCESS_KEY` and
//! `REFRESH_KEY` in the environment) that this service then accepts and rotates.

mod app;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_tokens::jwt::{Algorithm, HmacKey, KeySet};
use latchkey_tokens::{MemoryTokenStore, RefreshKey, TokenService, TokenStore};

fn secret(name: &str) -> Result<Vec<u8>, String> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        Some(text) => URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| format!("{name} is not base64url")),
        None => {
            let mut bytes = vec![0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
                .map_err(|e| format!("no randomness: {e}"))?;
            Ok(bytes)
        }
    }
}

fn store() -> Result<Arc<dyn TokenStore>, String> {
    match std::env::var("REDIS_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(url) => {
            let config = latchkey_redis::RedisStoreConfig::single(url)
                .key_prefix("jwt_api:")
                .build()
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            let store = latchkey_redis::tokens::RedisTokenStore::new(config)
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(MemoryTokenStore::new())),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let access = HmacKey::from_secret(Algorithm::HS256, &secret("ACCESS_KEY")?)
        .map_err(|e| format!("ACCESS_KEY: {e}"))?
        .with_kid("1");
    let keys = KeySet::new(access).map_err(|e| e.to_string())?;
    let refresh = RefreshKey::from_secret(&secret("REFRESH_KEY")?)
        .map_err(|e| format!("REFRESH_KEY: {e}"))?;
    let tokens = TokenService::builder(store()?, keys, refresh)
        .issuer("http://127.0.0.1")
        .audience("jwt_api")
        .build()
        .map_err(|e| e.to_string())?;
    let app = app::App::new(tokens, &[("alice", "password"), ("bob", "password")]);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3001".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    println!("jwt_api listening on http://127.0.0.1:{port}");
    axum::serve(listener, app::router(app))
        .await
        .map_err(|e| e.to_string())
}
