//! Drives the `jwt` example's logic (`latchkey_examples::jwt_cli::run`) like a user would.

use std::io::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_examples::jwt_cli::{run, EXIT_REJECTED, EXIT_USAGE};

fn secret() -> String {
    URL_SAFE_NO_PAD.encode([7u8; 32])
}

/// Runs the tool; returns (exit status, stdout, stderr).
fn jwt(args: &[&str], stdin: &str) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &mut stdin.as_bytes(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf-8 stdout"),
        String::from_utf8(err).expect("utf-8 stderr"),
    )
}

fn encode(claims: &str, extra: &[&str]) -> String {
    let s = secret();
    let mut args = vec!["encode", "--secret", &s];
    args.extend_from_slice(extra);
    args.push(claims);
    let (code, out, err) = jwt(&args, "");
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

#[test]
fn encode_then_verify_prints_the_claims() {
    let token = encode(
        r#"{"sub":"user-1","aud":"api","exp":1800000300,"roles":["admin"]}"#,
        &["--typ", "at+jwt"],
    );
    let s = secret();
    let (code, out, err) = jwt(
        &[
            "verify",
            "--secret",
            &s,
            "--audience",
            "api",
            "--typ",
            "at+jwt",
            "--now",
            "1800000000",
            &token,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(
        v,
        serde_json::json!({"sub":"user-1","aud":"api","exp":1800000300u64,"roles":["admin"]})
    );
}

#[test]
fn verify_reads_the_token_from_stdin_and_prints_the_header() {
    let token = encode(r#"{"exp":1800000300}"#, &["--kid", "k1"]);
    let s = secret();
    let (code, out, _) = jwt(
        &[
            "verify",
            "--secret",
            &s,
            "--now",
            "1800000000",
            "--header",
            "-",
        ],
        &format!("{token}\n"),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["header"]["kid"], "k1");
    assert_eq!(v["claims"]["exp"], 1_800_000_300u64);
}

#[test]
fn a_secret_file_holds_raw_bytes() {
    let path = std::env::temp_dir().join(format!("latchkey-jwt-cli-{}.key", std::process::id()));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&[7u8; 32]))
        .unwrap();
    let token = encode(r#"{"exp":1800000300}"#, &[]);
    let p = path.to_string_lossy().into_owned();
    let (code, _, err) = jwt(
        &["verify", "--secret-file", &p, "--now", "1800000000", &token],
        "",
    );
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn rejections_print_the_error_kind_and_exit_1() {
    let s = secret();
    let token = encode(r#"{"exp":1800000300,"iss":"a","aud":"x"}"#, &[]);
    let cases: [(&[&str], &str); 7] = [
        (&["--now", "1800000400"], "Expired"),
        (
            &["--now", "1800000000", "--audience", "api"],
            "WrongAudience",
        ),
        (&["--now", "1800000000"], "UnexpectedAudience"),
        (
            &[
                "--now",
                "1800000000",
                "--allow-unvalidated-audience",
                "--issuer",
                "b",
            ],
            "WrongIssuer",
        ),
        (
            &[
                "--now",
                "1800000000",
                "--allow-unvalidated-audience",
                "--typ",
                "at+jwt",
            ],
            "WrongType",
        ),
        (
            &[
                "--now",
                "1800000000",
                "--allow-unvalidated-audience",
                "--require",
                "exp,jti",
            ],
            "MissingClaim",
        ),
        (
            &[
                "--now",
                "1800000000",
                "--allow-unvalidated-audience",
                "--alg",
                "HS384",
            ],
            "KeyTooShort",
        ),
    ];
    for (opts, kind) in cases {
        let mut args = vec!["verify", "--secret", &s];
        args.extend_from_slice(opts);
        args.push(&token);
        let (code, out, err) = jwt(&args, "");
        if kind == "KeyTooShort" {
            // A 32-byte secret is too short for HS384: a usage error, not a rejection.
            assert_eq!(code, EXIT_USAGE, "{err}");
            assert!(err.contains("at least 48 bytes"), "{err}");
            continue;
        }
        assert_eq!(code, EXIT_REJECTED, "{kind}: {err}");
        assert!(out.is_empty());
        assert!(err.starts_with(&format!("error: {kind}: ")), "{err}");
    }
    // Leeway widens the window.
    let (code, _, err) = jwt(
        &[
            "verify",
            "--secret",
            &s,
            "--now",
            "1800000400",
            "--leeway",
            "200",
            "--audience",
            "x",
            &token,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn garbage_never_panics() {
    let s = secret();
    for token in [
        "",
        ".",
        "..",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        "\u{0}",
        &"A".repeat(10_000),
    ] {
        let (code, _, err) = jwt(&["verify", "--secret", &s, token], "");
        assert_eq!(code, EXIT_REJECTED, "{token:?}: {err}");
        assert!(err.starts_with("error: "));
    }
    for args in [
        &[][..],
        &["verify"][..],
        &["verify", "--secret"][..],
        &["verify", "--secret", "not base64!", "t"][..],
        &["verify", "--secret", &s, "--leeway", "-1", "t"][..],
        &["verify", "--secret", &s, "--require", "nope", "t"][..],
        &["verify", "--secret", &s, "--bogus", "t"][..],
        &["encode", "--secret", &s, "[1,2]"][..],
        &["encode", "--secret", &s, r#"{"exp":"soon"}"#][..],
        &["frobnicate"][..],
    ] {
        let (code, _, err) = jwt(args, "");
        assert_eq!(code, EXIT_USAGE, "{args:?}: {err}");
    }
}

#[test]
fn encode_refuses_a_custom_claim_that_would_duplicate_a_registered_one() {
    // JSON with a duplicate key is refused by serde's registered-claim decoding or by the signer.
    let s = secret();
    let (code, _, _) = jwt(&["encode", "--secret", &s, r#"{"exp":1,"exp":2}"#], "");
    assert_ne!(code, 0);
}

fn mint(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["mint-pair"];
    all.extend_from_slice(args);
    let (code, out, err) = jwt(&all, "");
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("JSON on stdout")
}

#[test]
fn mint_pair_prints_a_token_response_whose_access_token_verifies() {
    let s = secret();
    let pair = mint(&[
        "--sub",
        "alice",
        "--secret",
        &s,
        "--claims",
        r#"{"role":"admin"}"#,
    ]);
    let fields: Vec<&str> = pair
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "RFC 6749 §5.1"
    );
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["refresh_token"].as_str().expect("text").len(), 87);
    let access = pair["access_token"].as_str().expect("text");
    let (code, out, err) = jwt(
        &[
            "verify",
            "--secret",
            &s,
            "--typ",
            "at+jwt",
            "--audience",
            "jwt_api",
            "--issuer",
            "http://127.0.0.1",
            "--header",
            access,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["header"]["kid"], "1");
    assert_eq!(v["claims"]["sub"], "alice");
    assert_eq!(v["claims"]["role"], "admin");
    // Another key refuses it.
    let other = URL_SAFE_NO_PAD.encode([8u8; 32]);
    let (code, _, _) = jwt(
        &[
            "verify",
            "--secret",
            &other,
            "--audience",
            "jwt_api",
            access,
        ],
        "",
    );
    assert_eq!(code, EXIT_REJECTED);
}

#[test]
fn mint_pair_reads_its_secret_from_the_environment() {
    // A variable of this test only: tests run in parallel in one process.
    std::env::set_var("LATCHKEY_TEST_MINT_KEY", secret());
    let pair = mint(&[
        "--sub",
        "bob",
        "--secret-env",
        "LATCHKEY_TEST_MINT_KEY",
        "--audience",
        "api",
    ]);
    let s = secret();
    let access = pair["access_token"].as_str().expect("text");
    let (code, _, err) = jwt(&["verify", "--secret", &s, "--audience", "api", access], "");
    assert_eq!(code, 0, "{err}");

    std::env::set_var("LATCHKEY_TEST_MINT_SHORT", URL_SAFE_NO_PAD.encode([1u8; 8]));
    let (code, out, err) = jwt(
        &[
            "mint-pair",
            "--sub",
            "bob",
            "--secret-env",
            "LATCHKEY_TEST_MINT_UNSET",
        ],
        "",
    );
    assert_eq!(code, EXIT_USAGE);
    assert!(out.is_empty());
    assert!(err.contains("LATCHKEY_TEST_MINT_UNSET is not set"), "{err}");
    let (code, _, err) = jwt(
        &[
            "mint-pair",
            "--sub",
            "bob",
            "--secret-env",
            "LATCHKEY_TEST_MINT_SHORT",
        ],
        "",
    );
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        !err.contains(&URL_SAFE_NO_PAD.encode([1u8; 8])),
        "no secret in errors: {err}"
    );
}

#[test]
fn mint_pair_usage_errors_never_panic() {
    let s = secret();
    for args in [
        &["mint-pair"][..],
        &["mint-pair", "--secret", &s][..],
        &["mint-pair", "--sub"][..],
        &["mint-pair", "--sub", "", "--secret", &s][..],
        &[
            "mint-pair",
            "--sub",
            "a",
            "--secret",
            &s,
            "--secret-env",
            "X",
        ][..],
        &["mint-pair", "--sub", "a", "--secret", "short"][..],
        &["mint-pair", "--sub", "a", "--secret", &s, "--claims", "[1]"][..],
        &[
            "mint-pair",
            "--sub",
            "a",
            "--secret",
            &s,
            "--claims",
            r#"{"sid":"x"}"#,
        ][..],
        &["mint-pair", "--sub", "a", "--secret", &s, "--audience", ""][..],
        &["mint-pair", "--sub", "a", "--secret", &s, "--bogus"][..],
        &["mint-pair", "--sub", "a", "--secret", &s, "positional"][..],
    ] {
        let (code, out, err) = jwt(args, "");
        assert_eq!(code, EXIT_USAGE, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains(&s), "no secret in errors: {err}");
    }
}

#[path = "../jwt_api/app.rs"]
mod app;

#[test]
fn a_pair_minted_into_redis_works_against_jwt_api_on_that_redis() {
    use std::sync::Arc;

    use latchkey_tokens::jwt::{Algorithm, HmacKey, KeySet};
    use latchkey_tokens::{RefreshKey, TokenService};

    let redis = latchkey_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = redis.url();
    // Variables of this test only: tests run in parallel in one process.
    std::env::set_var("LATCHKEY_TEST_REDIS_ACCESS", secret());
    std::env::set_var(
        "LATCHKEY_TEST_REDIS_REFRESH",
        URL_SAFE_NO_PAD.encode([9u8; 32]),
    );
    let pair = mint(&[
        "--sub",
        "alice",
        "--secret-env",
        "LATCHKEY_TEST_REDIS_ACCESS",
        "--refresh-secret-env",
        "LATCHKEY_TEST_REDIS_REFRESH",
        "--redis-url",
        &url,
    ]);
    let access = pair["access_token"].as_str().expect("text").to_owned();
    let refresh = pair["refresh_token"].as_str().expect("text").to_owned();

    // jwt_api as its main() builds it, on the same Redis and keys.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let config = latchkey_redis::RedisStoreConfig::single(url)
            .key_prefix("jwt_api:")
            .build()
            .expect("config");
        let store = Arc::new(latchkey_redis::tokens::RedisTokenStore::new(config).expect("store"));
        let key = HmacKey::from_secret(Algorithm::HS256, &[7u8; 32])
            .expect("key")
            .with_kid("1");
        let tokens = TokenService::builder(
            store,
            KeySet::new(key).expect("keys"),
            RefreshKey::from_secret(&[9u8; 32]).expect("refresh key"),
        )
        .issuer("http://127.0.0.1")
        .audience("jwt_api")
        .build()
        .expect("service");
        let app = app::App::new(tokens, &[("alice", "password")]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app::router(app)).await });
        let http = reqwest::Client::new();

        let me = http
            .get(format!("{base}/me"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("GET /me");
        assert_eq!(
            me.status(),
            200,
            "the service accepts the minted access token"
        );
        let me: serde_json::Value = me.json().await.expect("JSON");
        assert_eq!(me["sub"], "alice", "{me}");

        let rotated = http
            .post(format!("{base}/refresh"))
            .json(&serde_json::json!({ "refresh_token": refresh }))
            .send()
            .await
            .expect("POST /refresh");
        assert_eq!(
            rotated.status(),
            200,
            "the service rotates the minted refresh token"
        );
        let rotated: serde_json::Value = rotated.json().await.expect("JSON");
        assert_ne!(rotated["refresh_token"], serde_json::json!(refresh));
    });
}
