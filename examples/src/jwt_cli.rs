//! The `jwt` command-line tool (`cargo run --example jwt -- help`): sign claims given as JSON,
//! verify a token with the options a service would use, and mint an access/refresh pair of
//! latchkey-tokens. It is a debugging aid, and it makes the verifier easy to drive from outside
//! Rust.
//!
//! The logic lives here, as [`run`], so it is tested like a library; `examples/jwt.rs` only calls it.

use std::io::{Read, Write};
use std::time::Duration;

use latchkey::jwt::{
    Algorithm, Claim, Claims, Error, HmacKey, Signer, Validation, ValidationBuilder, Verifier,
};
use serde_json::{Map, Value};

/// Exit code when the token is refused or the claims cannot be signed.
pub const EXIT_REJECTED: i32 = 1;
/// Exit code for a usage error (bad option, unreadable file, bad key).
pub const EXIT_USAGE: i32 = 2;

const USAGE: &str = "\
usage:
  jwt encode [key options] [--kid KID] [--typ TYP | --no-typ] CLAIMS
  jwt verify [key options] [validation options] TOKEN
  jwt mint-pair --sub SUB [key options | --secret-env VAR] [pair options]

CLAIMS is a JSON object (registered claims iss, sub, aud, exp, nbf, iat, jti plus your own);
CLAIMS or TOKEN may be `-` to read standard input.

key options (one of --secret / --secret-file is required):
  --alg HS256|HS384|HS512   algorithm of the key (default HS256)
  --secret B64URL           the secret as unpadded base64url
  --secret-file PATH        read the secret's raw bytes from PATH

validation options (verify):
  --audience AUD            accept tokens for AUD (repeatable)
  --issuer ISS              accept tokens from ISS (repeatable)
  --subject SUB             accept only this subject
  --require CLAIMS          comma-separated claims that must be present (default: exp;
                            `--require ''` requires none)
  --leeway SECS             clock skew tolerance for exp/nbf/iat (default 60)
  --max-age SECS            reject tokens issued (iat) longer ago
  --typ TYP                 require this header typ (e.g. at+jwt)
  --allow-unvalidated-audience
                            accept a token with aud although no --audience is given
  --max-len BYTES           token size cap (default 8192)
  --now SECS                verify as of this time (seconds since the epoch)
  --header                  print {\"header\": ..., \"claims\": ...} instead of the claims

mint-pair: a login of latchkey-tokens; prints the token response of RFC 6749 §5.1 (access_token,
token_type, expires_in, refresh_token). The access token (typ at+jwt) verifies with
`jwt verify --typ at+jwt --audience AUD --issuer ISS`. With --redis-url the login is stored in
that Redis, under jwt_api's key prefix: a jwt_api started with the same REDIS_URL, ACCESS_KEY and
REFRESH_KEY accepts the access token at /me and rotates the refresh token at /refresh. Without
it the login lives in an in-memory store that ends with the command (the access token then
verifies only with `jwt verify`, without revocation checks).
  --sub SUB                 the subject (required)
  --secret-env VAR          read the access key (unpadded base64url) from environment variable
                            VAR; the default key source, with VAR = ACCESS_KEY (as jwt_api)
  --refresh-secret-env VAR  the refresh key from VAR (default REFRESH_KEY, as jwt_api; random
                            when that is unset)
  --redis-url URL           store the login in this Redis (default: in memory)
  --key-prefix PREFIX       the Redis key prefix (default jwt_api:, as jwt_api)
  --kid KID                 the access key's kid (default 1)
  --issuer ISS              default http://127.0.0.1 (as jwt_api)
  --audience AUD            default jwt_api (as jwt_api)
  --claims JSON             the caller's claims, a JSON object (default {})

exit status: 0 on success, 1 when the token is rejected, 2 on a usage error.
";

struct Usage(String);

impl<E: std::fmt::Display> From<E> for Usage {
    fn from(e: E) -> Self {
        Usage(e.to_string())
    }
}

/// The name of an error's kind, e.g. `Expired` or `InvalidSignature`.
#[must_use]
pub fn kind_name(e: &Error) -> String {
    let dbg = format!("{:?}", e.kind());
    dbg.chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// Runs the tool with `args` (without the program name) and returns the exit status. Reads
/// `-` arguments from `stdin`; writes results to `stdout` and diagnostics to `stderr`. Never
/// panics on any input.
pub fn run(
    args: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let result = match args.first().map(String::as_str) {
        Some("encode") => encode(&args[1..], stdin, stdout),
        Some("verify") => verify(&args[1..], stdin, stdout),
        Some("mint-pair") => mint_pair(&args[1..], stdout),
        Some("help" | "--help" | "-h") => {
            let _ = stdout.write_all(USAGE.as_bytes());
            return 0;
        }
        _ => Err(Outcome::Usage(Usage(
            "expected `encode`, `verify` or `mint-pair`".into(),
        ))),
    };
    match result {
        Ok(()) => 0,
        Err(Outcome::Usage(Usage(msg))) => {
            let _ = writeln!(stderr, "error: {msg}\n\n{USAGE}");
            EXIT_USAGE
        }
        Err(Outcome::Rejected(e)) => {
            let _ = writeln!(stderr, "error: {}: {e}", kind_name(&e));
            EXIT_REJECTED
        }
    }
}

enum Outcome {
    Usage(Usage),
    Rejected(Error),
}

impl From<Usage> for Outcome {
    fn from(u: Usage) -> Self {
        Outcome::Usage(u)
    }
}

/// Parsed command line: options with their values, flags, and positional arguments.
#[derive(Default)]
struct Opts {
    alg: Option<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    no_typ: bool,
    audiences: Vec<String>,
    issuers: Vec<String>,
    subject: Option<String>,
    require: Option<String>,
    leeway: Option<String>,
    max_age: Option<String>,
    max_len: Option<String>,
    now: Option<String>,
    allow_unvalidated_audience: bool,
    header: bool,
    positional: Vec<String>,
}

fn parse(args: &[String], verify: bool) -> Result<Opts, Usage> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--alg" => o.alg = Some(value("--alg")?),
            "--secret" => o.secret = Some(value("--secret")?),
            "--secret-file" => o.secret_file = Some(value("--secret-file")?),
            "--typ" => o.typ = Some(value("--typ")?),
            "--kid" if !verify => o.kid = Some(value("--kid")?),
            "--no-typ" if !verify => o.no_typ = true,
            "--audience" if verify => o.audiences.push(value("--audience")?),
            "--issuer" if verify => o.issuers.push(value("--issuer")?),
            "--subject" if verify => o.subject = Some(value("--subject")?),
            "--require" if verify => o.require = Some(value("--require")?),
            "--leeway" if verify => o.leeway = Some(value("--leeway")?),
            "--max-age" if verify => o.max_age = Some(value("--max-age")?),
            "--max-len" if verify => o.max_len = Some(value("--max-len")?),
            "--now" if verify => o.now = Some(value("--now")?),
            "--allow-unvalidated-audience" if verify => o.allow_unvalidated_audience = true,
            "--header" if verify => o.header = true,
            "-" => o.positional.push(arg.clone()),
            s if s.starts_with("--") => return Err(Usage(format!("unknown option {s}"))),
            _ => o.positional.push(arg.clone()),
        }
    }
    if o.positional.len() != 1 {
        return Err(Usage(format!(
            "expected exactly one {}",
            if verify { "TOKEN" } else { "CLAIMS argument" }
        )));
    }
    Ok(o)
}

fn secs(name: &str, v: &str) -> Result<u64, Usage> {
    v.parse::<u64>()
        .map_err(|_| Usage(format!("{name} must be a whole number of seconds")))
}

fn key(o: &Opts) -> Result<HmacKey, Outcome> {
    let alg: Algorithm = o
        .alg
        .as_deref()
        .unwrap_or("HS256")
        .parse()
        .map_err(|_| Usage("--alg must be HS256, HS384 or HS512".into()))?;
    let key = match (&o.secret, &o.secret_file) {
        (Some(s), None) => HmacKey::from_base64url(alg, s),
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).map_err(|e| Usage(format!("cannot read {path}: {e}")))?;
            HmacKey::from_secret(alg, &bytes)
        }
        _ => return Err(Usage("give exactly one of --secret and --secret-file".into()).into()),
    };
    key.map_err(|e| Outcome::Usage(Usage(e.to_string())))
}

fn input(arg: &str, stdin: &mut dyn Read) -> Result<String, Usage> {
    if arg == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| Usage(format!("cannot read standard input: {e}")))?;
        Ok(s.trim().to_owned())
    } else {
        Ok(arg.to_owned())
    }
}

fn encode(args: &[String], stdin: &mut dyn Read, stdout: &mut dyn Write) -> Result<(), Outcome> {
    let o = parse(args, false)?;
    let mut key = key(&o)?;
    if let Some(kid) = &o.kid {
        key = key.with_kid(kid.clone());
    }
    let text = input(&o.positional[0], stdin)?;
    let claims: Claims<Map<String, Value>> = serde_json::from_str(&text)
        .map_err(|_| Usage("CLAIMS must be a JSON object; registered claims must have their RFC types (exp, nbf, iat: NumericDates, seconds since the epoch; iss, sub, jti: strings; aud: a string or an array of strings)".into()))?;
    let mut signer = Signer::new(key);
    if o.no_typ {
        signer = signer.without_typ();
    } else if let Some(typ) = &o.typ {
        signer = signer.with_typ(typ.clone());
    }
    let token = signer.sign(&claims).map_err(Outcome::Rejected)?;
    writeln!(stdout, "{token}").map_err(Usage::from)?;
    Ok(())
}

fn validation(o: &Opts) -> Result<Validation, Outcome> {
    let mut b: ValidationBuilder = Validation::builder();
    for a in &o.audiences {
        b = b.audience(a.clone());
    }
    for i in &o.issuers {
        b = b.issuer(i.clone());
    }
    if let Some(s) = &o.subject {
        b = b.subject(s.clone());
    }
    if let Some(r) = &o.require {
        let mut claims = Vec::new();
        for name in r.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let c = Claim::ALL
                .into_iter()
                .find(|c| c.as_str() == name)
                .ok_or_else(|| Usage(format!("--require: `{name}` is not a registered claim")))?;
            claims.push(c);
        }
        b = b.required_claims(claims);
    }
    if let Some(l) = &o.leeway {
        b = b.leeway(Duration::from_secs(secs("--leeway", l)?));
    }
    if let Some(m) = &o.max_age {
        b = b.max_age(Duration::from_secs(secs("--max-age", m)?));
    }
    if let Some(m) = &o.max_len {
        let n = m
            .parse::<usize>()
            .map_err(|_| Usage("--max-len must be a number of bytes".into()))?;
        b = b.max_token_len(n);
    }
    if let Some(t) = &o.typ {
        b = b.typ(t.clone());
    }
    if let Some(n) = &o.now {
        b = b.now(secs("--now", n)?);
    }
    if o.allow_unvalidated_audience {
        b = b.allow_unvalidated_audience();
    }
    b.build().map_err(|e| Outcome::Usage(Usage(e.to_string())))
}

fn verify(args: &[String], stdin: &mut dyn Read, stdout: &mut dyn Write) -> Result<(), Outcome> {
    let o = parse(args, true)?;
    let verifier = Verifier::new(key(&o)?, validation(&o)?);
    let token = input(&o.positional[0], stdin)?;
    let verified = verifier
        .verify_token::<Map<String, Value>>(&token)
        .map_err(Outcome::Rejected)?;
    let claims = serde_json::to_value(&verified.claims).map_err(Usage::from)?;
    let out = if o.header {
        let h = &verified.header;
        let mut header = Map::new();
        header.insert("alg".into(), h.alg().into());
        for (name, v) in [("typ", h.typ()), ("kid", h.kid()), ("cty", h.cty())] {
            if let Some(v) = v {
                header.insert(name.into(), v.into());
            }
        }
        for (k, v) in h.extra() {
            header.insert(k.clone(), v.clone());
        }
        serde_json::json!({ "header": header, "claims": claims })
    } else {
        claims
    };
    let text = serde_json::to_string_pretty(&out).map_err(Usage::from)?;
    writeln!(stdout, "{text}").map_err(Usage::from)?;
    Ok(())
}

/// The options of `mint-pair`.
struct PairOpts {
    key: Opts,
    secret_env: Option<String>,
    refresh_secret_env: Option<String>,
    redis_url: Option<String>,
    key_prefix: String,
    sub: Option<String>,
    issuer: String,
    audience: String,
    claims: String,
}

fn parse_pair(args: &[String]) -> Result<PairOpts, Usage> {
    let mut o = PairOpts {
        key: Opts::default(),
        secret_env: None,
        refresh_secret_env: None,
        redis_url: None,
        key_prefix: "jwt_api:".into(),
        sub: None,
        issuer: "http://127.0.0.1".into(),
        audience: "jwt_api".into(),
        claims: "{}".into(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--alg" => o.key.alg = Some(value("--alg")?),
            "--secret" => o.key.secret = Some(value("--secret")?),
            "--secret-file" => o.key.secret_file = Some(value("--secret-file")?),
            "--secret-env" => o.secret_env = Some(value("--secret-env")?),
            "--refresh-secret-env" => o.refresh_secret_env = Some(value("--refresh-secret-env")?),
            "--redis-url" => o.redis_url = Some(value("--redis-url")?),
            "--key-prefix" => o.key_prefix = value("--key-prefix")?,
            "--kid" => o.key.kid = Some(value("--kid")?),
            "--sub" => o.sub = Some(value("--sub")?),
            "--issuer" => o.issuer = value("--issuer")?,
            "--audience" => o.audience = value("--audience")?,
            "--claims" => o.claims = value("--claims")?,
            s => return Err(Usage(format!("unexpected argument {s}"))),
        }
    }
    Ok(o)
}

/// The bytes of an unpadded base64url secret in environment variable `var`.
fn env_secret(var: &str) -> Result<Vec<u8>, Usage> {
    use base64::Engine as _;
    let text = std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Usage(format!("environment variable {var} is not set")))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| Usage(format!("{var} is not unpadded base64url")))
}

fn mint_pair(args: &[String], stdout: &mut dyn Write) -> Result<(), Outcome> {
    use std::sync::Arc;

    use latchkey::tokens::jwt::KeySet;
    use latchkey::tokens::transport::{TokenTransport, Via};
    use latchkey::tokens::{MemoryTokenStore, RefreshKey, TokenService, TokenStore};

    let o = parse_pair(args)?;
    let sub = o
        .sub
        .clone()
        .ok_or_else(|| Usage("--sub is required".into()))?;
    let mut key = match (&o.key.secret, &o.key.secret_file, &o.secret_env) {
        (None, None, env) => {
            let var = env.as_deref().unwrap_or("ACCESS_KEY");
            let alg: Algorithm = o
                .key
                .alg
                .as_deref()
                .unwrap_or("HS256")
                .parse()
                .map_err(|_| Usage("--alg must be HS256, HS384 or HS512".into()))?;
            HmacKey::from_secret(alg, &env_secret(var)?)
                .map_err(|e| Usage(format!("{var}: {e}")))?
        }
        (_, _, None) => key(&o.key)?,
        _ => {
            return Err(Usage(
                "give exactly one of --secret, --secret-file and --secret-env".into(),
            )
            .into())
        }
    };
    key = key.with_kid(o.key.kid.clone().unwrap_or_else(|| "1".into()));
    let refresh_var = o.refresh_secret_env.as_deref().unwrap_or("REFRESH_KEY");
    let refresh_set = std::env::var(refresh_var).is_ok_and(|v| !v.trim().is_empty());
    let refresh = match &o.refresh_secret_env {
        Some(var) => env_secret(var)?,
        None if refresh_set => env_secret(refresh_var)?,
        None => {
            let mut bytes = vec![0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
                .map_err(|e| Usage(format!("no randomness: {e}")))?;
            bytes
        }
    };
    let refresh = RefreshKey::from_secret(&refresh).map_err(Usage::from)?;
    let claims: Map<String, Value> = serde_json::from_str(&o.claims)
        .map_err(|_| Usage("--claims must be a JSON object".into()))?;
    let store: Arc<dyn TokenStore> = match &o.redis_url {
        Some(url) => {
            let config = latchkey_redis::RedisStoreConfig::single(url.clone())
                .key_prefix(o.key_prefix.clone())
                .build()
                .map_err(|e| Usage(format!("--redis-url: {e}")))?;
            Arc::new(
                latchkey_redis::tokens::RedisTokenStore::new(config)
                    .map_err(|e| Usage(format!("--redis-url: {e}")))?,
            )
        }
        None => Arc::new(MemoryTokenStore::new()),
    };
    let tokens = TokenService::builder(store, KeySet::new(key).map_err(Usage::from)?, refresh)
        .issuer(o.issuer)
        .audience(o.audience)
        .build()
        .map_err(Usage::from)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Usage::from)?;
    let pair = runtime
        .block_on(tokens.issue(&sub, &claims))
        .map_err(Usage::from)?;
    let reply = TokenTransport::default().token_reply(&pair, Via::Body);
    writeln!(stdout, "{}", reply.body()).map_err(Usage::from)?;
    Ok(())
}
