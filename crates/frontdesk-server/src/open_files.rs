//! The open-file limit: every connection costs the server two descriptors (its socket and the
//! duplicate `realtime::teardown` ends it with), and the usual soft limit (1,024 under
//! systemd) would cap a server at a few hundred clients. The soft limit is raised to the hard
//! one at start, as nginx and Go's runtime do; the hard limit stays the operator's to set.

use rlimit::Resource;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
pub fn raise() -> Option<u64> {
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).ok()?;
    if soft < hard && rlimit::setrlimit(Resource::NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}
