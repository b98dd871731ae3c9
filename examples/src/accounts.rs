//! Where the login service keeps its accounts: a small [`UserStore`] trait with a SQLite
//! backend (the default: one file, created with its schema on first start, nothing to set up)
//! and a PostgreSQL backend (when `DATABASE_URL` is a `postgres://` URL). The store keeps only
//! the ID and the argon2 PHC string; the password policy and the hashing stay in
//! the login service (`examples/src/login/users.rs`).
//!
//! Unique IDs are the database's job (a primary key): two concurrent sign-ups of one ID give
//! one [`AccountError::Taken`], never two accounts.
//!
//! Built on sqlx: one async API over both databases, SQLite bundled (no system library), and
//! only runtime queries, so the build never needs a database.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// The [`UserStore`] methods of a sqlx pool-backed store; only the SQL differs between the
/// backends (their placeholder syntax).
macro_rules! sql_user_store {
    ($store:ty, $backend:literal, insert: $insert:literal, select: $select:literal, update: $update:literal,
     link: $link:literal, linked: $linked:literal) => {
        #[async_trait]
        impl UserStore for $store {
            async fn insert(&self, id: &str, password_hash: &str) -> Result<(), AccountError> {
                sqlx::query($insert)
                    .bind(id)
                    .bind(password_hash)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            async fn password_hash(&self, id: &str) -> Result<Option<String>, AccountError> {
                let row: Option<(String,)> = sqlx::query_as($select)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(row.map(|(hash,)| hash))
            }

            async fn set_password_hash(
                &self,
                id: &str,
                password_hash: &str,
            ) -> Result<bool, AccountError> {
                let done = sqlx::query($update)
                    .bind(password_hash)
                    .bind(now_ms())
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(done.rows_affected() == 1)
            }

            async fn linked_account(
                &self,
                issuer: &str,
                subject: &str,
            ) -> Result<Option<String>, AccountError> {
                let row: Option<(String,)> = sqlx::query_as($linked)
                    .bind(issuer)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(row.map(|(id,)| id))
            }

            async fn insert_linked(
                &self,
                id: &str,
                issuer: &str,
                subject: &str,
            ) -> Result<(), AccountError> {
                // One transaction: an account never exists without its identity, nor the
                // other way round, and the identity's primary key decides concurrent first
                // sign-ins.
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let now = now_ms();
                sqlx::query($insert)
                    .bind(id)
                    .bind(NO_PASSWORD)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query($link)
                    .bind(issuer)
                    .bind(subject)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), AccountError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                $backend
            }
        }
    };
}

/// The password hash of an account made by an external sign-in: not a PHC string, so no
/// password ever matches it.
pub const NO_PASSWORD: &str = "!";

/// The SQLite file used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE: &str = "./latchkey-login.db";

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// An account with this ID exists already (sign-up answers 409).
    #[error("an account with this ID exists")]
    Taken,
    /// The database failed or cannot be reached (answered 503). The source says why; it never
    /// holds a password or a hash.
    #[error("account database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// `DATABASE_URL` is neither a file path, a `sqlite:` URL nor a `postgres://` URL.
    #[error("DATABASE_URL is not a SQLite path or URL, nor a postgres:// URL")]
    BadUrl,
}

fn unavailable(err: sqlx::Error) -> AccountError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return AccountError::Taken;
        }
    }
    AccountError::Unavailable(err)
}

/// Account storage. Implementations keep IDs unique and never log what they store.
#[async_trait]
pub trait UserStore: fmt::Debug + Send + Sync + 'static {
    /// Stores a new account.
    ///
    /// # Errors
    /// [`AccountError::Taken`] when the ID exists (atomically: of two concurrent inserts of one
    /// ID, exactly one succeeds), or [`AccountError::Unavailable`].
    async fn insert(&self, id: &str, password_hash: &str) -> Result<(), AccountError>;

    /// The account's password hash, `None` for an unknown ID.
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    async fn password_hash(&self, id: &str) -> Result<Option<String>, AccountError>;

    /// Replaces the account's password hash; `false` for an unknown ID.
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<bool, AccountError>;

    /// The local account linked to the external identity (`issuer`, `subject`), if any.
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    async fn linked_account(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, AccountError>;

    /// Creates account `id` with no password ([`NO_PASSWORD`]: it signs in only through its
    /// provider) linked to (`issuer`, `subject`), both or neither.
    ///
    /// # Errors
    /// [`AccountError::Taken`] when the ID exists or the identity is already linked (of two
    /// concurrent first sign-ins with one identity exactly one succeeds), or
    /// [`AccountError::Unavailable`].
    async fn insert_linked(
        &self,
        id: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(), AccountError>;

    /// One round trip to the database, for `/health`.
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    async fn ping(&self) -> Result<(), AccountError>;

    /// Which backend this is (`sqlite` or `postgres`), for logs and `/health`.
    fn backend(&self) -> &'static str;
}

/// The schema, in order. Each entry runs once, in one migration transaction, recorded in
/// `latchkey_schema`; a database that has them all is left alone.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        password_changed_at BIGINT NOT NULL
    )",
    ),
    (
        2,
        "CREATE TABLE identities (
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        created_at BIGINT NOT NULL,
        PRIMARY KEY (issuer, subject)
    )",
    ),
];

/// Creates `latchkey_schema` and applies the [`MIGRATIONS`] it does not record yet, in the
/// transaction `$tx`; `$p1` is the backend's first placeholder (`?1` or `$1`).
macro_rules! apply_migrations {
    ($tx:ident, $p1:literal) => {
        sqlx::query("CREATE TABLE IF NOT EXISTS latchkey_schema (version BIGINT PRIMARY KEY)")
            .execute(&mut *$tx)
            .await
            .map_err(unavailable)?;
        for (version, sql) in MIGRATIONS {
            let done: Option<(i64,)> = sqlx::query_as(concat!(
                "SELECT version FROM latchkey_schema WHERE version = ",
                $p1
            ))
            .bind(version)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(unavailable)?;
            if done.is_none() {
                sqlx::query(sql)
                    .execute(&mut *$tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query(concat!(
                    "INSERT INTO latchkey_schema (version) VALUES (",
                    $p1,
                    ")"
                ))
                .bind(version)
                .execute(&mut *$tx)
                .await
                .map_err(unavailable)?;
            }
        }
    };
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the account store `database_url` names (`None`: [`DEFAULT_DATABASE`]) and brings its
/// schema up to date: a `postgres://` / `postgresql://` URL opens PostgreSQL, anything else is
/// a SQLite file path (or `sqlite:` URL), created when missing.
///
/// # Errors
/// [`AccountError::BadUrl`] for a URL of another scheme, [`AccountError::Unavailable`] when
/// the database cannot be opened or migrated.
pub async fn open(database_url: Option<&str>) -> Result<Arc<dyn UserStore>, AccountError> {
    let url = database_url.unwrap_or(DEFAULT_DATABASE);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PgUserStore::open(url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.contains("://") {
        return Err(AccountError::BadUrl);
    }
    Ok(Arc::new(SqliteUserStore::open(path).await?))
}

/// Accounts in a SQLite file (WAL journal, a 5 s busy timeout so concurrent writers wait
/// rather than fail).
pub struct SqliteUserStore {
    pool: SqlitePool,
}

impl fmt::Debug for SqliteUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteUserStore").finish_non_exhaustive()
    }
}

impl SqliteUserStore {
    /// Opens (creating if needed) the SQLite file at `path` and migrates it.
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    pub async fn open(path: &str) -> Result<Self, AccountError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        apply_migrations!(tx, "?1");
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }
}

sql_user_store!(
    SqliteUserStore,
    "sqlite",
    insert: "INSERT INTO accounts (id, password_hash, created_at, password_changed_at) VALUES (?1, ?2, ?3, ?3)",
    select: "SELECT password_hash FROM accounts WHERE id = ?1",
    update: "UPDATE accounts SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
    link: "INSERT INTO identities (issuer, subject, account_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    linked: "SELECT account_id FROM identities WHERE issuer = ?1 AND subject = ?2"
);

/// Accounts in PostgreSQL.
pub struct PgUserStore {
    pool: PgPool,
}

impl fmt::Debug for PgUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("PgUserStore").finish_non_exhaustive()
    }
}

impl PgUserStore {
    /// Connects to `url` and migrates the schema (concurrent starts are serialised by an
    /// advisory lock).
    ///
    /// # Errors
    /// [`AccountError::Unavailable`].
    pub async fn open(url: &str) -> Result<Self, AccountError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await
            .map_err(unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One migrating instance at a time; released at commit.
        sqlx::query("SELECT pg_advisory_xact_lock(7316841)")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        apply_migrations!(tx, "$1");
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }
}

sql_user_store!(
    PgUserStore,
    "postgres",
    insert: "INSERT INTO accounts (id, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $3)",
    select: "SELECT password_hash FROM accounts WHERE id = $1",
    update: "UPDATE accounts SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
    link: "INSERT INTO identities (issuer, subject, account_id, created_at) VALUES ($1, $2, $3, $4)",
    linked: "SELECT account_id FROM identities WHERE issuer = $1 AND subject = $2"
);
