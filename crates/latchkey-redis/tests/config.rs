//! The builder refuses impossible configurations, and nothing prints a password.

use std::time::Duration;

use latchkey_redis::{ConfigError, RedisStore, RedisStoreConfig};

fn single(url: &str) -> Result<RedisStoreConfig, ConfigError> {
    RedisStoreConfig::single(url).build()
}

#[test]
fn defaults() {
    let config = single("redis://127.0.0.1:1/").unwrap();
    assert_eq!(config.key_prefix(), "session:");
    assert_eq!(config.connect_timeout(), Duration::from_secs(1));
    assert_eq!(config.command_timeout(), Duration::from_secs(1));
    assert_eq!(config.pool_size(), latchkey_redis::DEFAULT_POOL_SIZE);
    assert!(!config.is_cluster());
}

#[test]
fn rejects_bad_urls() {
    assert!(matches!(
        single("http://127.0.0.1/"),
        Err(ConfigError::UnsupportedScheme)
    ));
    assert!(matches!(
        single("127.0.0.1:6380"),
        Err(ConfigError::UnsupportedScheme)
    ));
    assert!(matches!(single(""), Err(ConfigError::UnsupportedScheme)));
    assert!(matches!(
        single("redis://127.0.0.1:notaport/"),
        Err(ConfigError::InvalidUrl)
    ));
    assert!(matches!(
        single("rediss://127.0.0.1/"),
        Err(ConfigError::TlsNotEnabled)
    ));
}

#[test]
fn rejects_out_of_range_numbers() {
    let b = || RedisStoreConfig::single("redis://127.0.0.1:1/");
    assert!(matches!(
        b().pool_size(0).build(),
        Err(ConfigError::PoolSize(0))
    ));
    assert!(matches!(
        b().pool_size(10_000).build(),
        Err(ConfigError::PoolSize(10_000))
    ));
    assert!(matches!(
        b().connect_timeout(Duration::ZERO).build(),
        Err(ConfigError::Timeout("connect_timeout"))
    ));
    assert!(matches!(
        b().command_timeout(Duration::from_secs(3600)).build(),
        Err(ConfigError::Timeout("command_timeout"))
    ));
}

#[test]
fn rejects_bad_prefixes() {
    let b = |p: &str| {
        RedisStoreConfig::single("redis://127.0.0.1:1/")
            .key_prefix(p)
            .build()
    };
    for bad in [
        "app{x}:",
        "a}",
        "with space:",
        "tab\t",
        "é:",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(b(bad), Err(ConfigError::KeyPrefix)),
            "{bad:?} accepted"
        );
    }
    for good in ["", "myapp:sess:", "a-b_c.d/"] {
        assert!(b(good).is_ok(), "{good:?} refused");
    }
}

#[cfg(feature = "cluster")]
#[test]
fn rejects_bad_cluster_configs() {
    let none: [&str; 0] = [];
    assert!(matches!(
        RedisStoreConfig::cluster(none).build(),
        Err(ConfigError::NoClusterNodes)
    ));
    assert!(matches!(
        RedisStoreConfig::cluster(["redis://127.0.0.1:1/3"]).build(),
        Err(ConfigError::ClusterDatabase)
    ));
    assert!(matches!(
        RedisStoreConfig::cluster(["redis://127.0.0.1:1/", "http://x/"]).build(),
        Err(ConfigError::UnsupportedScheme)
    ));
    assert!(
        RedisStoreConfig::cluster(["redis://127.0.0.1:1/", "redis://127.0.0.1:2/"])
            .build()
            .unwrap()
            .is_cluster()
    );
}

#[test]
fn debug_never_shows_a_password() {
    let secret = "hunter2-very-secret";
    let url = format!("redis://admin:{secret}@127.0.0.1:6380/2");
    let builder = RedisStoreConfig::single(&url);
    assert!(!format!("{builder:?}").contains(secret));
    let config = builder.build().unwrap();
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(!shown.contains("admin"), "{shown}");
    assert!(shown.contains("127.0.0.1:6380"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    let store = RedisStore::new(config).unwrap();
    assert!(!format!("{store:?}").contains(secret));

    #[cfg(feature = "cluster")]
    {
        let cluster_url = format!("redis://admin:{secret}@127.0.0.1:6380/");
        let cluster = RedisStoreConfig::cluster([cluster_url]).build().unwrap();
        assert!(!format!("{cluster:?}").contains(secret));
    }
    // Errors do not echo the URL either.
    let err = RedisStoreConfig::single(format!("redis://u:{secret}@host:bad/"))
        .build()
        .unwrap_err();
    assert!(!format!("{err:?} {err}").contains(secret));
}
