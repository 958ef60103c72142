//! Open-file limit: 50,000 connections need 50,000 descriptors in the load generator and as
//! many in the server, which inherits this process's limits.

use rlimit::Resource;

/// What 50,000 idle connections plus the server's own files need, with room to spare.
const WANTED: u64 = 262_144;

/// Raises RLIMIT_NOFILE as far as allowed: above the hard limit when privileged (root may
/// raise it up to fs.nr_open), else the soft limit to the hard one. Returns the soft limit
/// now in force.
pub fn raise_nofile() -> u64 {
    let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) else {
        return 0;
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let target = WANTED.min(nr_open).max(hard);
    if target > hard && rlimit::setrlimit(Resource::NOFILE, target, target).is_ok() {
        return target;
    }
    if soft < hard && rlimit::setrlimit(Resource::NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}
