//! How many WebSockets one customer, one agent, one partner and the whole instance may hold.
//! The hub checks these under the same lock as it registers a connection, so a burst of
//! handshakes can never overshoot a cap.

use std::time::Duration;

use crate::error::{ApiError, ErrorCode};

/// The caps, each per instance (instances do not share counts: with N instances behind a
/// balancer, a client may hold up to N times a cap).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_customer: usize,
    pub per_agent: usize,
    /// Every customer socket of one partner, by API key or session token.
    pub per_partner: usize,
    pub total: usize,
}

/// What a connection would count against, as the hub finds it.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// The customer's or the agent's own sockets.
    pub own: usize,
    /// The partner's sockets; `None` for an agent.
    pub partner: Option<usize>,
    pub total: usize,
}

/// The cap a refused connection met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Customer(usize),
    Agent(usize),
    Partner(usize),
    Instance(usize),
    /// The credential was revoked between its check at the handshake and the registration.
    Revoked,
}

/// A client told to wait this long before retrying: sockets come and go in seconds.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Caps {
    /// Whether one more connection fits; `is_agent` picks the cap for `own`.
    pub fn admit(&self, counts: Counts, is_agent: bool) -> Result<(), Refused> {
        if counts.total >= self.total {
            return Err(Refused::Instance(self.total));
        }
        if is_agent && counts.own >= self.per_agent {
            return Err(Refused::Agent(self.per_agent));
        }
        if !is_agent && counts.own >= self.per_customer {
            return Err(Refused::Customer(self.per_customer));
        }
        match counts.partner {
            Some(partner) if partner >= self.per_partner => Err(Refused::Partner(self.per_partner)),
            _ => Ok(()),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        let message = match refused {
            Refused::Customer(cap) => {
                format!("this customer already has {cap} WebSockets open on this server")
            }
            Refused::Agent(cap) => {
                format!("this agent already has {cap} WebSockets open on this server")
            }
            Refused::Partner(cap) => {
                format!("this partner already has {cap} WebSockets open on this server")
            }
            Refused::Instance(cap) => format!("this server already holds {cap} WebSockets"),
            Refused::Revoked => {
                return ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "the credential was revoked; get a new one",
                )
            }
        };
        let mut error = ApiError::too_many_requests(message, RETRY_AFTER);
        error.code = ErrorCode::TooManyConnections;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        per_customer: 2,
        per_agent: 3,
        per_partner: 4,
        total: 5,
    };

    fn counts(own: usize, partner: Option<usize>, total: usize) -> Counts {
        Counts {
            own,
            partner,
            total,
        }
    }

    #[test]
    fn each_cap_refuses_at_its_value() {
        assert_eq!(CAPS.admit(counts(1, Some(1), 1), false), Ok(()));
        assert_eq!(
            CAPS.admit(counts(2, Some(2), 2), false),
            Err(Refused::Customer(2))
        );
        assert_eq!(CAPS.admit(counts(2, None, 2), true), Ok(()));
        assert_eq!(CAPS.admit(counts(3, None, 3), true), Err(Refused::Agent(3)));
        assert_eq!(
            CAPS.admit(counts(0, Some(4), 4), false),
            Err(Refused::Partner(4))
        );
        assert_eq!(
            CAPS.admit(counts(0, Some(0), 5), false),
            Err(Refused::Instance(5))
        );
    }

    #[test]
    fn a_refusal_is_429_with_retry_after() {
        let error = ApiError::from(Refused::Customer(2));
        assert_eq!(error.status.as_u16(), 429);
        assert_eq!(error.code, ErrorCode::TooManyConnections);
        assert_eq!(error.retry_after, Some(5));
    }
}
