//! The connection layer: a few long-lived multiplexed connections ("lanes") checked out of a
//! deadpool-redis pool once, shared by every request, and replaced through the pool when they
//! break. See the crate docs ("Connection design") for why.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::{self, AsyncConnectionConfig, Cmd, Pipeline, RedisError, Value};
use deadpool_redis::{Runtime, Timeouts};
use latchkey_session::StoreError;

use crate::config::{RedisStoreConfig, Target};
use crate::error::{from_pool_error, from_redis_error, ConfigError};

/// A cheap, cloneable handle to one multiplexed connection (single node or cluster).
///
/// Cloning it clones a channel sender: requests sent through clones are pipelined on the same
/// socket by the connection's driver task.
#[derive(Clone)]
pub(crate) enum Handle {
    Single(MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(deadpool_redis::cluster::ClusterConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The deadpool-redis pool behind the lanes.
enum Pool {
    Single(deadpool_redis::Pool),
    #[cfg(feature = "cluster")]
    Cluster(deadpool_redis::cluster::Pool),
}

/// A checked-out pool object, kept for as long as its lane uses it. Dropping it gives the
/// connection back to the pool (which checks it with a `PING` before handing it out again);
/// [`Checkout::discard`] removes it from the pool for good.
enum Checkout {
    Single(deadpool_redis::Connection),
    #[cfg(feature = "cluster")]
    Cluster(deadpool_redis::cluster::Connection),
}

impl Checkout {
    fn handle(&self) -> Handle {
        match self {
            Self::Single(c) => Handle::Single((**c).clone()),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => Handle::Cluster((**c).clone()),
        }
    }

    /// Detaches the connection from the pool and drops it, freeing the pool slot so that the
    /// pool creates a fresh connection on the next checkout.
    fn discard(self) {
        match self {
            Self::Single(c) => drop(deadpool_redis::Connection::take(c)),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => drop(deadpool_redis::cluster::Connection::take(c)),
        }
    }
}

struct LaneSlot {
    checkout: Checkout,
    handle: Handle,
    generation: u64,
}

#[derive(Default)]
struct Lane {
    slot: Mutex<Option<LaneSlot>>,
    /// Serializes refills of this lane, so that a burst of requests on an empty lane causes one
    /// checkout, not one per request.
    refill: tokio::sync::Mutex<()>,
}

/// Identifies the lane (and the connection in it) a request used, so that a failure can retire
/// exactly that connection and not its replacement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    lane: usize,
    generation: u64,
}

/// What to do with a lane's connection after a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The connection is fine (the server answered with an error): keep it.
    Keep,
    /// The connection may be fine but did not answer in time: give it back to the pool, which
    /// checks it (`PING`) before reuse and drops it if it is dead.
    Recheck,
    /// The connection is broken (I/O error, closed): drop it and free its pool slot.
    Discard,
}

/// The lanes over the pool. Cheap to share (`Arc`).
pub(crate) struct Lanes {
    pool: Pool,
    lanes: Box<[Lane]>,
    next: AtomicUsize,
    generation: AtomicU64,
    connect_timeout: Duration,
    command_timeout: Duration,
    cluster: bool,
}

impl fmt::Debug for Lanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self
            .lanes
            .iter()
            .filter(|lane| lock(&lane.slot).is_some())
            .count();
        f.debug_struct("Lanes")
            .field("lanes", &self.lanes.len())
            .field("open", &open)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the slot half-written (it is one `Option`
    // assignment), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lanes {
    pub(crate) fn new(config: &RedisStoreConfig) -> Result<Arc<Self>, ConfigError> {
        let timeouts = Timeouts {
            wait: Some(config.connect_timeout),
            create: Some(config.connect_timeout),
            recycle: Some(config.connect_timeout),
        };
        let size = config.pool_size;
        let (pool, cluster) = match &config.target {
            Target::Single(info) => {
                // No response timeout here: `Lanes::run` bounds every call (all its round
                // trips) with one timer, instead of one more timer per command.
                let conn_config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(None);
                let manager = deadpool_redis::Manager::new_with_config(info.clone(), conn_config)
                    .map_err(ConfigError::redis)?;
                let pool = deadpool_redis::Pool::builder(manager)
                    .max_size(size)
                    .runtime(Runtime::Tokio1)
                    .timeouts(timeouts)
                    .build()
                    .map_err(ConfigError::pool)?;
                (Pool::Single(pool), false)
            }
            #[cfg(feature = "cluster")]
            Target::Cluster(infos) => {
                let manager = deadpool_redis::cluster::Manager::new(infos.clone(), false)
                    .map_err(ConfigError::redis)?;
                let pool = deadpool_redis::cluster::Pool::builder(manager)
                    .max_size(size)
                    .runtime(Runtime::Tokio1)
                    .timeouts(timeouts)
                    .build()
                    .map_err(ConfigError::pool)?;
                (Pool::Cluster(pool), true)
            }
        };
        let lanes = (0..size).map(|_| Lane::default()).collect();
        Ok(Arc::new(Self {
            pool,
            lanes,
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            cluster,
        }))
    }

    /// Whether the store talks to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Runs `op` with a connection handle, bounded by the configured timeouts: at most
    /// `connect_timeout` to (re)open a lane when it is empty, then at most `command_timeout` for
    /// `op` itself, however many round trips it makes. A failure retires the lane's connection
    /// when it says the connection is broken or unresponsive.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let (handle, ticket) = self.handle().await?;
        match tokio::time::timeout(self.command_timeout, op(handle)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let (error, mut verdict) = from_redis_error(err);
                if self.cluster && verdict == Verdict::Recheck {
                    verdict = Verdict::Keep;
                }
                self.retire(ticket, verdict);
                Err(error)
            }
            Err(_elapsed) => {
                // A cluster connection spans every node: one slow node must not cost the lane
                // its connections to the healthy ones (the cluster client reconnects per node).
                if !self.cluster {
                    self.retire(ticket, Verdict::Recheck);
                }
                Err(StoreError::Timeout)
            }
        }
    }

    /// A handle from the next lane (round robin), opening the lane first if it is empty.
    async fn handle(&self) -> Result<(Handle, Ticket), StoreError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        if let Some(found) = self.peek(index) {
            return Ok(found);
        }
        match tokio::time::timeout(self.connect_timeout, self.refill(index)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(StoreError::Timeout),
        }
    }

    fn peek(&self, index: usize) -> Option<(Handle, Ticket)> {
        lock(&self.lanes[index].slot).as_ref().map(|slot| {
            (
                slot.handle.clone(),
                Ticket {
                    lane: index,
                    generation: slot.generation,
                },
            )
        })
    }

    async fn refill(&self, index: usize) -> Result<(Handle, Ticket), StoreError> {
        let lane = &self.lanes[index];
        let _refilling = lane.refill.lock().await;
        // Someone else may have refilled the lane while we waited for the refill lock.
        if let Some(found) = self.peek(index) {
            return Ok(found);
        }
        let checkout = match &self.pool {
            Pool::Single(pool) => Checkout::Single(pool.get().await.map_err(from_pool_error)?),
            #[cfg(feature = "cluster")]
            Pool::Cluster(pool) => Checkout::Cluster(pool.get().await.map_err(from_pool_error)?),
        };
        let handle = checkout.handle();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(lane = index, generation, "redis lane opened");
        let previous = lock(&lane.slot).replace(LaneSlot {
            checkout,
            handle: handle.clone(),
            generation,
        });
        // Only the refill lock holder fills an empty slot, so `previous` is always `None`; if
        // that ever changed, give the old connection back rather than leak its pool slot.
        drop(previous);
        Ok((
            handle,
            Ticket {
                lane: index,
                generation,
            },
        ))
    }

    /// Takes the connection a failed request used out of its lane (if it is still there).
    fn retire(&self, ticket: Ticket, verdict: Verdict) {
        if verdict == Verdict::Keep {
            return;
        }
        let taken = {
            let mut slot = lock(&self.lanes[ticket.lane].slot);
            match slot.as_ref() {
                Some(current) if current.generation == ticket.generation => slot.take(),
                _ => None,
            }
        };
        if let Some(slot) = taken {
            tracing::debug!(
                lane = ticket.lane,
                generation = ticket.generation,
                ?verdict,
                "redis lane retired"
            );
            match verdict {
                Verdict::Discard => slot.checkout.discard(),
                Verdict::Recheck | Verdict::Keep => drop(slot.checkout),
            }
        }
    }

    /// How many lanes hold a connection right now (for `Debug` and tests).
    pub(crate) fn open_lanes(&self) -> usize {
        self.lanes
            .iter()
            .filter(|lane| lock(&lane.slot).is_some())
            .count()
    }
}
