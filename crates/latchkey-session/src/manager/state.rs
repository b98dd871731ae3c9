//! One request's view of its session: what was loaded and what the handler changed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{SessionData, SessionId, SessionKey, SessionMetadata, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Cookie,
    Header,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Unloaded,
    Loaded,
    Degraded,
}

/// The session as it exists in the store (when it does).
pub(super) struct Stored {
    pub(super) id: SessionId,
    pub(super) key: SessionKey,
    /// When this request found the session live.
    pub(super) loaded_at: Timestamp,
    pub(super) created_at: Timestamp,
    pub(super) idle_deadline: Timestamp,
    pub(super) absolute_deadline: Timestamp,
    pub(super) metadata: SessionMetadata,
}

pub(super) struct State {
    pub(super) incoming: Option<SessionId>,
    pub(super) transport: Transport,
    pub(super) phase: Phase,
    pub(super) stored: Option<Stored>,
    pub(super) data: SessionData,
    pub(super) user_id: Option<String>,
    pub(super) changes: BTreeMap<String, Option<Value>>,
    pub(super) cleared: bool,
    pub(super) user_changed: bool,
    pub(super) logged_in: bool,
    pub(super) cycle: bool,
    pub(super) destroy: bool,
    pub(super) metadata: Option<SessionMetadata>,
    pub(super) finished: bool,
}

impl State {
    pub(super) fn new(incoming: Option<SessionId>, transport: Transport) -> Self {
        Self {
            incoming,
            transport,
            phase: Phase::Unloaded,
            stored: None,
            data: SessionData::new(),
            user_id: None,
            changes: BTreeMap::new(),
            cleared: false,
            user_changed: false,
            logged_in: false,
            cycle: false,
            destroy: false,
            metadata: None,
            finished: false,
        }
    }

    pub(super) fn finished() -> Self {
        let mut st = Self::new(None, Transport::Cookie);
        st.finished = true;
        st
    }

    pub(super) fn is_modified(&self) -> bool {
        self.cleared || !self.changes.is_empty() || self.user_changed
    }

    pub(super) fn current_key(&self) -> Option<SessionKey> {
        self.stored.as_ref().map(|s| s.key)
    }
}
