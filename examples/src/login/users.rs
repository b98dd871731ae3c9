//! The example's user accounts: ID/password validation and argon2 password hashes, kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// The special characters a password must contain one of.
pub const PASSWORD_SPECIALS: &str = "@$!%*#?&";

/// Why a user ID or password was refused before any lookup. Each maps to a 400 with a clear message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The ID is not 6 to 13 lowercase ASCII letters and digits (`^[a-z0-9]{6,13}$`).
    InvalidId,
    /// The password is not 8 to 16 characters with a letter, a digit and one of `@$!%*#?&`.
    InvalidPassword,
}

impl InputError {
    /// A short machine-readable code for the JSON body.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            InputError::InvalidId => "invalid_id",
            InputError::InvalidPassword => "invalid_password",
        }
    }

    /// The message shown to the user.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            InputError::InvalidId => "id must be 6 to 13 characters: lowercase letters a-z and digits 0-9",
            InputError::InvalidPassword => {
                "password must be 8 to 16 characters and contain a letter, a digit and one of @$!%*#?&"
            }
        }
    }
}

/// Checks `id` against `^[a-z0-9]{6,13}$`.
///
/// # Errors
/// [`InputError::InvalidId`] when it does not match.
pub fn validate_id(id: &str) -> Result<(), InputError> {
    let ok = (6..=13).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(InputError::InvalidId)
    }
}

/// Checks the password rule: 8 to 16 characters (Unicode scalar values), at least one ASCII letter,
/// one ASCII digit and one of `@$!%*#?&`; control characters are refused. Other printable characters
/// are allowed (a password rule that forbids characters only makes passwords weaker).
///
/// # Errors
/// [`InputError::InvalidPassword`] when the rule is not met.
pub fn validate_password(password: &str) -> Result<(), InputError> {
    let len = password.chars().count();
    let ok = (8..=16).contains(&len)
        && !password.chars().any(char::is_control)
        && password.chars().any(|c| c.is_ascii_alphabetic())
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| PASSWORD_SPECIALS.contains(c));
    if ok {
        Ok(())
    } else {
        Err(InputError::InvalidPassword)
    }
}

/// Why a sign-up failed after validation.
#[derive(Debug)]
pub enum SignupError {
    /// The ID is taken.
    Taken,
    /// Hashing failed (never expected with valid parameters).
    Hash(argon2::password_hash::Error),
}

/// In-memory users with argon2id (RustCrypto `argon2`, default parameters) password hashes.
///
/// Cheap to clone (an `Arc` inside). Hashing and verification run on tokio's blocking pool so they
/// do not stall the request executor.
#[derive(Clone)]
pub struct Users {
    inner: Arc<Inner>,
}

struct Inner {
    hashes: RwLock<HashMap<String, String>>,
    /// A hash of a random password, verified against for unknown users so that "no such user" and
    /// "wrong password" cost the same argon2 work.
    dummy_hash: String,
    /// At most this many argon2 runs at once ([`hash_concurrency`]); the rest wait their turn, so
    /// a flood of logins queues instead of taking every core.
    hashing: tokio::sync::Semaphore,
    #[cfg(test)]
    peak: std::sync::atomic::AtomicUsize,
    #[cfg(test)]
    running: std::sync::atomic::AtomicUsize,
}

/// How many argon2 hashes may run at once: one less than the cores (at least one), so that a
/// flood of logins always leaves a core for the requests that need none. Each run is argon2id
/// with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1: the `argon2` crate's
/// default), about 20 ms of one core here, so one permit serves about 50 logins a second.
#[must_use]
pub(crate) fn hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.inner.hashes.read().map(|map| map.len()).unwrap_or(0);
        f.debug_struct("Users")
            .field("count", &count)
            .finish_non_exhaustive()
    }
}

fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

fn verify_password(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

impl Users {
    /// An empty user table (hashes one dummy password, so it costs one argon2 run).
    ///
    /// # Errors
    /// When argon2 fails to hash (not expected with its default parameters).
    pub fn new() -> Result<Self, argon2::password_hash::Error> {
        Self::with_hash_concurrency(hash_concurrency())
    }

    /// [`new`](Self::new) with at most `limit` argon2 runs at once (at least one).
    ///
    /// # Errors
    /// When argon2 fails to hash (not expected with its default parameters).
    pub fn with_hash_concurrency(limit: usize) -> Result<Self, argon2::password_hash::Error> {
        let mut random = [0u8; 32];
        argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy_hash = hash_password(&random)?;
        Ok(Self {
            inner: Arc::new(Inner {
                hashes: RwLock::new(HashMap::new()),
                dummy_hash,
                hashing: tokio::sync::Semaphore::new(limit.max(1)),
                #[cfg(test)]
                peak: std::sync::atomic::AtomicUsize::new(0),
                #[cfg(test)]
                running: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// Runs one argon2 job on the blocking pool once a hashing permit is free.
    async fn hash_job<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.inner.hashing.acquire().await.ok()?;
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            let now = self.inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.inner.peak.fetch_max(now, Ordering::SeqCst);
        }
        let out = tokio::task::spawn_blocking(job).await.ok();
        #[cfg(test)]
        self.inner
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        out
    }

    fn contains(&self, id: &str) -> bool {
        self.inner
            .hashes
            .read()
            .map(|map| map.contains_key(id))
            .unwrap_or(false)
    }

    /// Creates a user with an already-validated ID and password.
    ///
    /// # Errors
    /// [`SignupError::Taken`] when the ID exists; [`SignupError::Hash`] when argon2 fails.
    pub async fn signup(&self, id: String, password: String) -> Result<(), SignupError> {
        if self.contains(&id) {
            return Err(SignupError::Taken);
        }
        let hash = self
            .hash_job(move || hash_password(password.as_bytes()))
            .await
            .ok_or(SignupError::Hash(argon2::password_hash::Error::Crypto))?
            .map_err(SignupError::Hash)?;
        let mut map = self
            .inner
            .hashes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.contains_key(&id) {
            return Err(SignupError::Taken);
        }
        map.insert(id, hash);
        Ok(())
    }

    /// Does `password` belong to user `id`? Unknown users are verified against a dummy hash, so both
    /// failures do the same work and give the same answer.
    pub async fn verify(&self, id: &str, password: String) -> bool {
        let stored = self
            .inner
            .hashes
            .read()
            .ok()
            .and_then(|map| map.get(id).cloned());
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let matched = self
            .hash_job(move || verify_password(password.as_bytes(), &phc))
            .await
            .unwrap_or(false);
        known && matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_the_limit() {
        let users = Users::new().unwrap();
        users
            .signup("alice01".into(), "secret1!".into())
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..12 {
            let users = users.clone();
            tasks.spawn(async move { users.verify("alice01", format!("wrong{n}!x")).await });
        }
        while let Some(done) = tasks.join_next().await {
            assert!(!done.unwrap());
        }
        let peak = users.inner.peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=2).contains(&peak),
            "peak {peak} hashes in flight, limit 2"
        );
        assert!(hash_concurrency() >= 1);
    }

    #[test]
    fn ids() {
        for ok in ["abcdef", "abc123", "a1b2c3d4e5f6g", "000000"] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "abcde",
            "abcdefghijklmn",
            "Abcdef",
            "abc-def",
            "abc def",
            "abcdé1",
            "ａｂｃｄｅｆ",
        ] {
            assert_eq!(validate_id(bad), Err(InputError::InvalidId), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        for ok in ["abcdef1!", "A1@aaaaaaaaaaaaa", "pässwörd1#", "x9&yyyyy"] {
            assert_eq!(validate_password(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "abc1!",             // too short
            "abcdefghijklmn1!x", // 17
            "abcdefgh!",         // no digit
            "12345678!",         // no letter
            "abcdefg12",         // no special
            "abcdef1^",          // ^ is not one of the specials
            "abcde\n1!x",        // control character
        ] {
            assert_eq!(
                validate_password(bad),
                Err(InputError::InvalidPassword),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn signup_and_verify() {
        let users = Users::new().unwrap();
        users
            .signup("alice1".into(), "secret1!x".into())
            .await
            .unwrap();
        assert!(matches!(
            users.signup("alice1".into(), "other1!x".into()).await,
            Err(SignupError::Taken)
        ));
        assert!(users.verify("alice1", "secret1!x".into()).await);
        assert!(!users.verify("alice1", "secret1!y".into()).await);
        assert!(!users.verify("nobody", "secret1!x".into()).await);
        assert!(!format!("{users:?}").contains("argon2"));
    }
}
