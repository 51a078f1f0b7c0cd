//! How does a subscription start, end and buffer? [`SubscribeOptions`].

/// Options of [`crate::Store::subscribe`].
///
/// ```
/// use strata::SubscribeOptions;
/// let options = SubscribeOptions::default().with_replay(true).with_live_count(true);
/// assert!(options.stopped_matching, "on by default");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// First deliver the documents that match now ([`crate::EventKind::Existing`]), in the spec's
    /// sort order. Default false.
    pub replay: bool,
    /// Also deliver [`crate::EventKind::StoppedMatching`] when an update makes a document leave the
    /// result (a subscriber to "active users" hears when one becomes inactive). Default true;
    /// `.with_stopped_matching(false)` hears only of documents that match (and of their deletion).
    pub stopped_matching: bool,
    /// Keep a count of the current matches in every event. Default false.
    pub live_count: bool,
    /// Deliver every version after this seq (a changes feed: resume where an earlier
    /// subscription stopped, also after a restart). Default: versions written from now on.
    pub from_seq: Option<u64>,
    /// End the subscription once every version up to this seq was looked at (a bounded
    /// changes feed: `recv` then answers [`crate::Error::SubscriptionEnded`] and iteration stops).
    /// Default: no end.
    pub until_seq: Option<u64>,
    /// Events buffered for the consumer before the subscription pauses (it then catches up
    /// from the log). Default 1024.
    pub buffer: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            replay: false,
            stopped_matching: true,
            live_count: false,
            from_seq: None,
            until_seq: None,
            buffer: 1024,
        }
    }
}

impl SubscribeOptions {
    /// Replays the current matches first.
    pub fn with_replay(mut self, yes: bool) -> Self {
        self.replay = yes;
        self
    }

    /// Delivers stopped-matching events (the default); `false` turns them off.
    pub fn with_stopped_matching(mut self, yes: bool) -> Self {
        self.stopped_matching = yes;
        self
    }

    /// Keeps a live count.
    pub fn with_live_count(mut self, yes: bool) -> Self {
        self.live_count = yes;
        self
    }

    /// Starts after `seq`.
    pub fn with_from_seq(mut self, seq: u64) -> Self {
        self.from_seq = Some(seq);
        self
    }

    /// Ends after `seq`.
    pub fn with_until_seq(mut self, seq: u64) -> Self {
        self.until_seq = Some(seq);
        self
    }

    /// Sets the buffer size (at least 1).
    pub fn with_buffer(mut self, events: usize) -> Self {
        self.buffer = events;
        self
    }
    /// Renamed [`SubscribeOptions::with_replay`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_replay`")]
    #[doc(hidden)]
    pub fn replay(self, yes: bool) -> Self {
        self.with_replay(yes)
    }

    /// Renamed [`SubscribeOptions::with_stopped_matching`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_stopped_matching`")]
    #[doc(hidden)]
    pub fn stopped_matching(self, yes: bool) -> Self {
        self.with_stopped_matching(yes)
    }

    /// Renamed [`SubscribeOptions::with_live_count`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_live_count`")]
    #[doc(hidden)]
    pub fn live_count(self, yes: bool) -> Self {
        self.with_live_count(yes)
    }

    /// Renamed [`SubscribeOptions::with_from_seq`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_from_seq`")]
    #[doc(hidden)]
    pub fn from_seq(self, seq: u64) -> Self {
        self.with_from_seq(seq)
    }

    /// Renamed [`SubscribeOptions::with_until_seq`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_until_seq`")]
    #[doc(hidden)]
    pub fn until_seq(self, seq: u64) -> Self {
        self.with_until_seq(seq)
    }

    /// Renamed [`SubscribeOptions::with_buffer`] (setters are `with_*`).
    #[deprecated(note = "use `SubscribeOptions::with_buffer`")]
    #[doc(hidden)]
    pub fn buffer(self, events: usize) -> Self {
        self.with_buffer(events)
    }
}
