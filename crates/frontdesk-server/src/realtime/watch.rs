//! The watch that closes a socket once the credential it opened with stops speaking: at its
//! expiry (a timer), at once when it is revoked anywhere (logout, key rotation: a signal
//! through the event feed), and at the latest at the next periodic re-check against the
//! database (in case a signal was lost).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::app::identity::{still_valid, Credential};
use crate::state::AppState;

/// Why a socket's credential needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Revoked,
    Expired,
    Recheck,
}

/// The close reasons a client sees (with code 1008).
pub const REVOKED: &str = "credentials revoked";
pub const EXPIRED: &str = "session expired";

pub struct Watch {
    credential: Credential,
    /// Raised by the hub when a revocation for this credential arrives.
    revoked: Arc<Notify>,
    expires: Option<Instant>,
    recheck: Duration,
    /// Fires at the expiry or the next re-check, whichever comes first: one timer per socket,
    /// kept across turns of the serve loop rather than made anew each turn.
    timer: Pin<Box<Sleep>>,
}

impl Watch {
    pub fn new(credential: Credential, revoked: Arc<Notify>, recheck: Duration) -> Self {
        let expires = credential.expires_at.map(|at| {
            let left = at.as_offset() - time::OffsetDateTime::now_utc();
            Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
        });
        let mut watch = Self {
            credential,
            revoked,
            expires,
            recheck,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        };
        watch.schedule();
        watch
    }

    /// Sets the timer to the next re-check, jittered (0.5 to 1.5 times the interval) so that
    /// sockets opened together do not query together, or to the expiry if that comes first.
    fn schedule(&mut self) {
        let factor = rand::rng().random_range(0.5..1.5);
        let next_check = Instant::now() + self.recheck.mul_f64(factor);
        let at = self
            .expires
            .map_or(next_check, |expires| expires.min(next_check));
        self.timer.as_mut().reset(at);
    }

    /// Resolves when something is due. Cancel-safe: the timer persists and a revocation
    /// leaves a permit behind, so the serve loop may drop this future every turn.
    pub async fn due(&mut self) -> Due {
        tokio::select! {
            biased;
            _ = self.revoked.notified() => Due::Revoked,
            _ = self.timer.as_mut() => {
                if self.expires.is_some_and(|at| at <= Instant::now()) {
                    Due::Expired
                } else {
                    Due::Recheck
                }
            }
        }
    }

    /// Acts on `due`: `Err` with the close reason when the socket must go. A re-check that
    /// cannot reach the database keeps the socket and tries again later: an outage must not
    /// disconnect everyone.
    pub async fn settle(&mut self, due: Due, state: &AppState) -> Result<(), &'static str> {
        match due {
            Due::Revoked => Err(REVOKED),
            Due::Expired => Err(EXPIRED),
            Due::Recheck => {
                let valid = still_valid(state, &self.credential).await;
                self.schedule();
                match valid {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(REVOKED),
                    Err(error) => {
                        tracing::debug!(%error, "credential re-check failed; keeping the socket");
                        Ok(())
                    }
                }
            }
        }
    }
}
