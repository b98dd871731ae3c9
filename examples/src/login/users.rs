//! The example's user accounts: ID/password validation and argon2 password hashes, stored
//! through a [`UserStore`] (SQLite by default, PostgreSQL by URL).

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::accounts::{AccountError, UserStore};

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

/// Why an account operation failed after validation.
#[derive(Debug)]
pub enum UsersError {
    /// Sign-up: the ID is taken (the database's unique key decided).
    Taken,
    /// Every hashing permit stayed busy for [`HASH_QUEUE_TIMEOUT`]: answer 503, retry soon.
    Busy,
    /// The account database failed or cannot be reached (503).
    Unavailable(AccountError),
    /// Hashing failed (never expected with valid parameters).
    Hash(argon2::password_hash::Error),
}

impl From<AccountError> for UsersError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Taken => UsersError::Taken,
            other => UsersError::Unavailable(other),
        }
    }
}

/// A successful password check: the hash it matched, so that a login can tell afterwards
/// whether the password changed meanwhile ([`Users::still_current`]).
#[derive(Clone)]
pub struct Verified {
    hash: String,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verified")
    }
}

/// How long a request waits for a hashing permit before it is answered 503: long enough to
/// ride out a burst (at ~20 ms a hash, one permit clears 100 queued requests in 2 s), short
/// enough that a flood cannot queue requests without end.
pub const HASH_QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The accounts, over a [`UserStore`] (SQLite, PostgreSQL), with argon2id (RustCrypto
/// `argon2`, default parameters) password hashes.
///
/// Cheap to clone (an `Arc` inside). Hashing and verification run on tokio's blocking pool so they
/// do not stall the request executor, at most [`hash_concurrency`] at once.
#[derive(Clone)]
pub struct Users {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn UserStore>,
    /// A hash of a random password, verified against for unknown users so that "no such user" and
    /// "wrong password" cost the same argon2 work.
    dummy_hash: String,
    /// At most this many argon2 runs at once ([`hash_concurrency`]); the rest wait their turn
    /// (up to [`HASH_QUEUE_TIMEOUT`]), so a flood of logins queues instead of taking every core.
    hashing: tokio::sync::Semaphore,
    queue_timeout: std::time::Duration,
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
pub fn hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("store", &self.inner.store.backend())
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

/// A new account ID for an external sign-in: `x` and 12 random lowercase letters and digits
/// (within the ID rule, and 62 bits of randomness).
fn generated_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 12];
    argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    std::iter::once('x')
        .chain(
            bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % 36])),
        )
        .collect()
}

impl Users {
    /// The accounts in `store` (hashes one dummy password, so it costs one argon2 run).
    ///
    /// # Errors
    /// When argon2 fails to hash (not expected with its default parameters).
    pub fn new(store: Arc<dyn UserStore>) -> Result<Self, argon2::password_hash::Error> {
        Self::with_hash_concurrency(store, hash_concurrency())
    }

    /// [`new`](Self::new) with at most `limit` argon2 runs at once (at least one).
    ///
    /// # Errors
    /// When argon2 fails to hash (not expected with its default parameters).
    pub fn with_hash_concurrency(
        store: Arc<dyn UserStore>,
        limit: usize,
    ) -> Result<Self, argon2::password_hash::Error> {
        let mut random = [0u8; 32];
        argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy_hash = hash_password(&random)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                dummy_hash,
                hashing: tokio::sync::Semaphore::new(limit.max(1)),
                queue_timeout: HASH_QUEUE_TIMEOUT,
                #[cfg(test)]
                peak: std::sync::atomic::AtomicUsize::new(0),
                #[cfg(test)]
                running: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// The account store, for `/health`.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn UserStore> {
        &self.inner.store
    }

    /// Runs one argon2 job on the blocking pool once a hashing permit is free, or gives up
    /// with [`UsersError::Busy`] after the queue timeout.
    async fn hash_job<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, UsersError> {
        let permit =
            tokio::time::timeout(self.inner.queue_timeout, self.inner.hashing.acquire()).await;
        // The semaphore is never closed, so acquiring only waits.
        let Ok(Ok(_permit)) = permit else {
            return Err(UsersError::Busy);
        };
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            let now = self.inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.inner.peak.fetch_max(now, Ordering::SeqCst);
        }
        let out = tokio::task::spawn_blocking(job).await;
        #[cfg(test)]
        self.inner
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        out.map_err(|_| UsersError::Hash(argon2::password_hash::Error::Crypto))
    }

    async fn hash(&self, password: String) -> Result<String, UsersError> {
        self.hash_job(move || hash_password(password.as_bytes()))
            .await?
            .map_err(UsersError::Hash)
    }

    /// Creates a user with an already-validated ID and password.
    ///
    /// # Errors
    /// [`UsersError::Taken`] when the ID exists (the database's unique key decides, so of two
    /// concurrent sign-ups exactly one wins); [`UsersError::Busy`], [`UsersError::Unavailable`],
    /// [`UsersError::Hash`].
    pub async fn signup(&self, id: String, password: String) -> Result<(), UsersError> {
        // A cheap early answer for the common case; the insert below is what decides.
        if self.inner.store.password_hash(&id).await?.is_some() {
            return Err(UsersError::Taken);
        }
        let hash = self.hash(password).await?;
        self.inner.store.insert(&id, &hash).await?;
        Ok(())
    }

    /// Checks `password` for user `id`: `Some` when it matches. Unknown users are verified
    /// against a dummy hash, so both failures do the same work and give the same answer.
    ///
    /// # Errors
    /// [`UsersError::Busy`] or [`UsersError::Unavailable`] (the login then answers 503: a
    /// database outage never looks like a wrong password).
    pub async fn verify(&self, id: &str, password: String) -> Result<Option<Verified>, UsersError> {
        // An account made by an external sign-in has no password: it is checked against the
        // dummy hash like an unknown ID, so its answer and its timing are an unknown ID's.
        let stored = self
            .inner
            .store
            .password_hash(id)
            .await?
            .filter(|hash| hash != crate::accounts::NO_PASSWORD);
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let checked = phc.clone();
        let matched = self
            .hash_job(move || verify_password(password.as_bytes(), &checked))
            .await?;
        Ok((known && matched).then_some(Verified { hash: phc }))
    }

    /// Is the password `verified` checked still the account's? `false` once it has been
    /// changed (or the account is gone): a login that verified the old password just before a
    /// change must not keep the session it created just after.
    ///
    /// # Errors
    /// [`UsersError::Unavailable`].
    pub async fn still_current(&self, id: &str, verified: &Verified) -> Result<bool, UsersError> {
        Ok(self.inner.store.password_hash(id).await?.as_deref() == Some(verified.hash.as_str()))
    }

    /// The local account of the external identity (`issuer`, `subject`): the linked one, or a
    /// new account (a generated ID, no password) linked to it on the first sign-in. Only the
    /// identity decides: an e-mail address never links to an existing account.
    ///
    /// # Errors
    /// [`UsersError::Unavailable`].
    pub async fn sign_in_external(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<String, UsersError> {
        for _ in 0..3 {
            if let Some(id) = self.inner.store.linked_account(issuer, subject).await? {
                return Ok(id);
            }
            let id = generated_id();
            match self.inner.store.insert_linked(&id, issuer, subject).await {
                Ok(()) => return Ok(id),
                // Another first sign-in of this identity won (or, never in practice, the
                // generated ID was taken): look again.
                Err(AccountError::Taken) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(UsersError::Taken)
    }

    /// Replaces the password of `id` with the already-validated `new` password, if `current`
    /// is its password now. `false` when `current` is wrong (nothing changes then).
    ///
    /// # Errors
    /// [`UsersError::Busy`], [`UsersError::Unavailable`], [`UsersError::Hash`].
    pub async fn change_password(
        &self,
        id: &str,
        current: String,
        new: String,
    ) -> Result<bool, UsersError> {
        if self.verify(id, current).await?.is_none() {
            return Ok(false);
        }
        let hash = self.hash(new).await?;
        Ok(self.inner.store.set_password_hash(id, &hash).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts in a fresh SQLite file, deleted with the returned directory.
    async fn users(limit: usize) -> (Users, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("accounts.db");
        let store = crate::accounts::SqliteUserStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("sqlite");
        let users = Users::with_hash_concurrency(Arc::new(store), limit).expect("users");
        (users, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_the_limit() {
        let (users, _dir) = users(2).await;
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
            assert!(done.unwrap().unwrap().is_none());
        }
        let peak = users.inner.peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=2).contains(&peak),
            "peak {peak} hashes in flight, limit 2"
        );
        assert!(hash_concurrency() >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_external_identity_gets_one_account_without_a_password() {
        let (users, _dir) = users(1).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let users = users.clone();
            tasks.spawn(async move { users.sign_in_external("https://id.example", "s-1").await });
        }
        let mut ids = Vec::new();
        while let Some(done) = tasks.join_next().await {
            ids.push(done.unwrap().unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            1,
            "eight racing first sign-ins, one account: {ids:?}"
        );
        let id = ids.remove(0);
        assert!(validate_id(&id).is_ok(), "{id}");
        assert_eq!(
            users
                .sign_in_external("https://id.example", "s-1")
                .await
                .unwrap(),
            id
        );
        assert_ne!(
            users
                .sign_in_external("https://other.example", "s-1")
                .await
                .unwrap(),
            id,
            "the same subject at another issuer is another person"
        );
        // No password opens it, the marker included.
        for guess in [crate::accounts::NO_PASSWORD, "", "secret1!"] {
            assert!(users.verify(&id, guess.into()).await.unwrap().is_none());
        }
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
    async fn signup_verify_and_change_password() {
        let (users, _dir) = users(1).await;
        users
            .signup("alice1".into(), "secret1!x".into())
            .await
            .unwrap();
        assert!(matches!(
            users.signup("alice1".into(), "other1!x".into()).await,
            Err(UsersError::Taken)
        ));
        let verified = users.verify("alice1", "secret1!x".into()).await.unwrap();
        let verified = verified.expect("the right password");
        assert!(users
            .verify("alice1", "secret1!y".into())
            .await
            .unwrap()
            .is_none());
        assert!(users
            .verify("nobody", "secret1!x".into())
            .await
            .unwrap()
            .is_none());
        assert!(!format!("{users:?} {verified:?}").contains("argon2"));
        assert!(users.still_current("alice1", &verified).await.unwrap());

        // A wrong current password changes nothing.
        assert!(!users
            .change_password("alice1", "wrong1!x".into(), "newpass1!".into())
            .await
            .unwrap());
        assert!(users.still_current("alice1", &verified).await.unwrap());
        assert!(users
            .change_password("alice1", "secret1!x".into(), "newpass1!".into())
            .await
            .unwrap());
        assert!(!users.still_current("alice1", &verified).await.unwrap());
        assert!(users
            .verify("alice1", "secret1!x".into())
            .await
            .unwrap()
            .is_none());
        assert!(users
            .verify("alice1", "newpass1!".into())
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn a_full_hashing_queue_answers_busy() {
        let (users, _dir) = users(1).await;
        let mut inner = Arc::try_unwrap(users.inner).ok().expect("one owner");
        inner.queue_timeout = std::time::Duration::from_millis(50);
        let users = Users {
            inner: Arc::new(inner),
        };
        // Hold the only permit, as a long hash would.
        let held = users.inner.hashing.acquire().await.unwrap();
        assert!(matches!(
            users.verify("alice1", "secret1!x".into()).await,
            Err(UsersError::Busy)
        ));
        drop(held);
        assert!(users
            .verify("alice1", "secret1!x".into())
            .await
            .unwrap()
            .is_none());
    }
}
