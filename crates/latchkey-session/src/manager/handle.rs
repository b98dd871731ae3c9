//! [`Session`]: the handle a handler reads and writes, loaded on first use and ended by
//! [`Session::finish`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::finish::{Finish, RequestOutcome};
use super::state::{Phase, State, Stored};
use super::ManagerInner;
use crate::{
    SessionCapPolicy, SessionError, SessionEvent, SessionInfo, SessionKey, SessionMetadata,
    StoreUnavailablePolicy,
};

pub(super) struct SessionInner {
    pub(super) manager: Arc<ManagerInner>,
    pub(super) state: Mutex<State>,
}

/// One request's session. Cheap to clone (clones share state); loads from the store on first
/// use, so a request that never touches it costs nothing.
///
/// Reads and writes go to an in-memory copy; [`finish`](Self::finish), called once by the
/// adapter after the handler, writes only what changed. All methods are safe to call from
/// several tasks of the same request.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state();
        f.debug_struct("Session")
            .field("key", &st.current_key())
            .field("phase", &st.phase)
            .field("modified", &st.is_modified())
            .field("cycle", &st.cycle)
            .field("destroy", &st.destroy)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(super) fn new(inner: SessionInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Ends the request's session: applies the policy (see the table on
    /// [`SessionManager`](crate::SessionManager)) to what the handler did and returns what to
    /// add to the response. `outcome` says whether the handler answered 5xx
    /// ([`RequestOutcome`]: then only a `destroy()` is carried out).
    ///
    /// The returned future is ready at once, without allocating, when no store access is
    /// needed (a session that was never used, or only read and not due for a rolling touch).
    /// Calling `finish` again returns an empty response; changes made after it are ignored.
    /// A failed write never loses the session: the store is left as it was and the client's
    /// cookie is not changed.
    ///
    /// # Errors
    ///
    /// The future fails with [`SessionError::Store`] when a store write fails and the policy
    /// is [`StoreUnavailablePolicy::Fail`], and with [`SessionError::TooManySessions`] when a
    /// login lost a race for the last place under a [`SessionCapPolicy::Refuse`] cap.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use latchkey_session::{CookieKey, MemoryStore, RequestHeaders, RequestOutcome, SessionManager};
    /// # let manager = SessionManager::builder(
    /// #     Arc::new(MemoryStore::new()),
    /// #     CookieKey::from_secret(&[7; 32]).unwrap(),
    /// # ).build().unwrap();
    /// let session = manager.session(RequestHeaders::new());
    /// // The handler never used its session: nothing to store, no cookie, no waiting.
    /// let finish = session.finish(RequestOutcome::Success);
    /// assert!(finish.is_ready());
    /// ```
    pub fn finish(&self, outcome: RequestOutcome) -> Finish {
        let st = {
            let mut guard = self.state();
            if guard.finished {
                return Finish::ready();
            }
            if self.inner.manager.nothing_to_write(&guard, outcome) {
                // Nothing to take out of the state: marking it is enough to ignore later changes.
                guard.finished = true;
                return Finish::ready();
            }
            guard.finished = true;
            std::mem::replace(&mut *guard, State::finished())
        };
        let manager = Arc::clone(&self.inner.manager);
        // Boxed: the ready case above stays small, at the price of one allocation next to a
        // store write.
        Finish::writing(Box::pin(
            async move { manager.finish_writes(st, outcome).await },
        ))
    }

    #[inline]
    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock; if one ever did, the state is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, loaded from the store on first use (and only then). Never holds the lock
    /// across the store call.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let incoming = {
            let st = self.state();
            if st.phase != Phase::Unloaded {
                return Ok(st);
            }
            st.incoming.clone()
        };
        let m = &self.inner.manager;
        let loaded = match &incoming {
            None => Ok(None),
            Some(id) => m.load_record(id).await,
        };
        let mut st = self.state();
        if st.phase != Phase::Unloaded {
            return Ok(st); // another task of this request loaded it meanwhile
        }
        match loaded {
            Ok(Some((key, record, loaded_at))) => {
                st.stored = incoming.map(|id| Stored {
                    id,
                    key,
                    loaded_at,
                    created_at: record.created_at,
                    idle_deadline: record.idle_deadline,
                    absolute_deadline: record.absolute_deadline,
                    metadata: record.metadata,
                });
                st.data = record.data;
                st.user_id = record.user_id;
                st.phase = Phase::Loaded;
                Ok(st)
            }
            Ok(None) => {
                st.phase = Phase::Loaded;
                Ok(st)
            }
            Err(err) => match m.unavailable {
                StoreUnavailablePolicy::Fail => Err(SessionError::Store(err)),
                StoreUnavailablePolicy::Anonymous => {
                    tracing::warn!(error = %err, "session store unavailable; continuing as an anonymous request");
                    st.phase = Phase::Degraded;
                    Ok(st)
                }
            },
        }
    }

    /// The value under `key`, deserialized as `T`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`), [`SessionError::Data`] if the
    /// value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.loaded()
            .await?
            .data
            .get(key)
            .map_err(SessionError::Data)
    }

    /// The raw JSON value under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        Ok(self.loaded().await?.data.get_value(key).cloned())
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] if `value` cannot be serialized (nothing changes then), or
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(SessionError::Data)?;
        self.insert_value(key, value).await
    }

    /// Stores a raw JSON value under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if st.data.get_value(key) == Some(&value) {
            return Ok(()); // unchanged: no write
        }
        st.data.insert_value(key, value.clone());
        st.changes.insert(key.to_owned(), Some(value));
        Ok(())
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        let mut st = self.loaded().await?;
        let old = st.data.remove(key);
        if old.is_some() {
            st.changes.insert(key.to_owned(), None);
        }
        Ok(old)
    }

    /// Removes every key (the user, if any, stays logged in; use [`logout`](Self::logout)).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if !st.data.is_empty() || !st.changes.is_empty() {
            st.data.clear();
            st.changes.clear();
            st.cleared = true;
        }
        Ok(())
    }

    /// Whether the session holds no data and no user.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        let st = self.loaded().await?;
        Ok(st.data.is_empty() && st.user_id.is_none())
    }

    /// The logged-in user.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn user_id(&self) -> Result<Option<String>, SessionError> {
        Ok(self.loaded().await?.user_id.clone())
    }

    /// The key of the session as loaded from the store (`None` for a new session). Its hex
    /// form identifies "this device" in [`list_devices`](Self::list_devices).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails (policy `Fail`).
    pub async fn key(&self) -> Result<Option<SessionKey>, SessionError> {
        Ok(self.loaded().await?.current_key())
    }

    /// Moves the session to a fresh ID at the end of the request (session-fixation defence;
    /// call it on every privilege change — [`login`](Self::login) does). The data and the
    /// absolute deadline carry over; the old ID stays readable for the grace period, then dies.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading fails, [`SessionError::Degraded`] if the store was
    /// unavailable when the session was loaded.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut st = self.loaded().await?;
        if st.phase == Phase::Degraded {
            return Err(SessionError::Degraded);
        }
        st.cycle = true;
        Ok(())
    }

    /// Logs `user_id` in: sets the user and cycles the ID at the end of the request, where the
    /// store also enforces the per-user cap.
    /// The session's data carries over (a cart filled before login survives), except when the
    /// session belonged to a *different* user: then it starts empty.
    ///
    /// # Errors
    ///
    /// [`SessionError::TooManySessions`] if the cap is reached and the policy is
    /// [`SessionCapPolicy::Refuse`]; [`SessionError::Store`] or [`SessionError::Degraded`] if the
    /// store cannot be used (a login never silently falls back to anonymous).
    pub async fn login(&self, user_id: impl Into<String>) -> Result<(), SessionError> {
        let user_id = user_id.into();
        let current = {
            let st = self.loaded().await?;
            if st.phase == Phase::Degraded {
                return Err(SessionError::Degraded);
            }
            st.current_key()
        };
        let m = &self.inner.manager;
        if let Some(cap) = m
            .per_user_cap
            .filter(|c| c.policy == SessionCapPolicy::Refuse)
        {
            // An early answer for the handler. The store enforces the cap atomically when the
            // session is written; this check only spares a doomed login its work.
            let others = m
                .store
                .list_for_user(&user_id)
                .await
                .map_err(SessionError::Store)?;
            let others = others
                .iter()
                .filter(|info| Some(info.key) != current)
                .count();
            if u32::try_from(others).unwrap_or(u32::MAX) >= cap.max.get() {
                return Err(SessionError::TooManySessions);
            }
        }
        let mut st = self.state();
        if st
            .user_id
            .as_deref()
            .is_some_and(|previous| previous != user_id)
        {
            // Another user's data never carries over into this user's session.
            st.data.clear();
            st.changes.clear();
            st.cleared = true;
        }
        st.user_id = Some(user_id);
        st.user_changed = true;
        st.logged_in = true;
        st.cycle = true;
        Ok(())
    }

    /// Ends the session: same as [`destroy`](Self::destroy).
    pub fn logout(&self) {
        self.destroy();
    }

    /// Deletes the session at the end of the request and sends a cookie that removes it from
    /// the browser. Needs no store access before then.
    pub fn destroy(&self) {
        self.state().destroy = true;
    }

    /// Records the client's `User-Agent`, stored (truncated) when the session is created or a
    /// user logs in, for the device list. Does not by itself cause a write.
    pub fn set_user_agent(&self, user_agent: &str) {
        self.state().metadata = Some(SessionMetadata::with_user_agent(user_agent));
    }

    async fn user_and_key(&self) -> Result<(String, Option<SessionKey>), SessionError> {
        let st = self.loaded().await?;
        if st.phase == Phase::Degraded {
            return Err(SessionError::Degraded);
        }
        let user = st.user_id.clone().ok_or(SessionError::NotLoggedIn)?;
        Ok((user, st.current_key()))
    }

    /// The logged-in user's sessions ("my devices"), oldest first, marking this one.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn list_devices(&self) -> Result<Vec<Device>, SessionError> {
        let (user, current) = self.user_and_key().await?;
        let m = &self.inner.manager;
        let list = m
            .store
            .list_for_user(&user)
            .await
            .map_err(SessionError::Store)?;
        Ok(list
            .into_iter()
            .map(|info| Device {
                current: Some(info.key) == current,
                info,
            })
            .collect())
    }

    /// Revokes one of the logged-in user's *other* sessions by its key (remote logout).
    /// Returns `false` if `key` is not a live session of this user. Revoking the current
    /// session is [`destroy`](Self::destroy).
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn revoke_device(&self, key: &SessionKey) -> Result<bool, SessionError> {
        let (user, current) = self.user_and_key().await?;
        if Some(*key) == current {
            self.destroy();
            return Ok(true);
        }
        let m = &self.inner.manager;
        let mine = m
            .store
            .list_for_user(&user)
            .await
            .map_err(SessionError::Store)?;
        if !mine.iter().any(|info| info.key == *key) {
            return Ok(false);
        }
        let deleted = m.store.delete(key).await.map_err(SessionError::Store)?;
        if deleted {
            m.emit(SessionEvent::Revoked {
                key: *key,
                user_id: user,
            });
        }
        Ok(deleted)
    }

    /// Revokes all the logged-in user's sessions except this one ("log out my other devices").
    /// Returns how many were revoked.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotLoggedIn`], or a store error.
    pub async fn revoke_other_devices(&self) -> Result<u64, SessionError> {
        let (user, current) = self.user_and_key().await?;
        let m = &self.inner.manager;
        let count = m
            .store
            .delete_all_for_user(&user, current.as_ref())
            .await
            .map_err(SessionError::Store)?;
        m.emit(SessionEvent::RevokedAll {
            user_id: user,
            count,
        });
        Ok(count)
    }
}

/// One entry of [`Session::list_devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// The session's listing (key hash, times, user agent).
    pub info: SessionInfo,
    /// Whether it is the session of the current request.
    pub current: bool,
}
