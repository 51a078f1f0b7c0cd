//! A doorbell for "the log grew": writers ring it after every commit, task re-runs
//! (expected result counts) and the continuous-query feed wait on it.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    /// The newest committed seq the bell was rung for.
    seq: u64,
    /// Bumped by [`Watch::poke`]: something other than a commit wants the waiter to look.
    pokes: u64,
    closed: bool,
}

/// What a waiter saw last, to tell whether anything changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Seen {
    pub(crate) seq: u64,
    pokes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Watch {
    state: Mutex<State>,
    changed: Condvar,
}

impl Watch {
    pub(crate) fn new(seq: u64) -> Watch {
        Watch {
            state: Mutex::new(State {
                seq,
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    /// The log has grown to `seq`.
    pub(crate) fn committed(&self, seq: u64) {
        let mut st = self.state.lock();
        if seq > st.seq {
            st.seq = seq;
            self.changed.notify_all();
        }
    }

    /// Wakes the waiters without a commit (a new subscriber, a drained consumer).
    pub(crate) fn poke(&self) {
        let mut st = self.state.lock();
        st.pokes += 1;
        self.changed.notify_all();
    }

    /// Wakes every waiter for good.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        self.changed.notify_all();
    }

    pub(crate) fn seen(&self) -> Seen {
        let st = self.state.lock();
        Seen {
            seq: st.seq,
            pokes: st.pokes,
        }
    }

    /// Waits until something changed after `seen`, the watch closed or `until` passed; returns
    /// what is seen now, or `None` once closed.
    pub(crate) fn wait(&self, seen: Seen, until: Option<Instant>) -> Option<Seen> {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return None;
            }
            let now = Seen {
                seq: st.seq,
                pokes: st.pokes,
            };
            if now != seen {
                return Some(now);
            }
            match until {
                Some(t) => {
                    if self.changed.wait_until(&mut st, t).timed_out() {
                        return Some(now);
                    }
                }
                None => self.changed.wait(&mut st),
            }
        }
    }
}
