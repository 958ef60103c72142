//! The settings that bound what one WebSocket may send and how long a write to it may wait.

use std::time::Duration;

/// How long a goodbye (the close frame, then its flush) may take before the connection is
/// reset instead: short, since a peer that cannot take a close frame at once is not reading.
const GOODBYE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// Frames per second a connection may send on average.
    pub rate: f64,
    /// Frames a connection may send at once.
    pub burst: u32,
    /// Per conversation, at most one `typing` frame with the same `isTyping` forwarded per
    /// this interval.
    pub typing_interval: Duration,
    /// How long one frame may wait to be taken by the connection's writer; longer, and the
    /// peer counts as not reading and is disconnected.
    pub write_timeout: Duration,
}

impl Flow {
    /// The deadline for the close frame and for the end of the connection after it.
    pub fn goodbye(&self) -> Duration {
        self.write_timeout.min(GOODBYE)
    }
}
