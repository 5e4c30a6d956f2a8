//! The open-file limit of `loop serve`. Every connection is a file descriptor, and the common
//! default soft limit (1,024) is far below what the kernel allows: at start the soft limit is
//! raised to the hard one, and the server keeps its connections below it (closing idle ones
//! first), leaving room for the database's files.

/// File descriptors kept for the database, logs and the listener.
const RESERVED: u64 = 64;

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// The soft limit before.
    pub was: u64,
    pub now: u64,
    pub hard: u64,
}

impl Limit {
    /// How many connections the server keeps open at most.
    pub fn connections(&self) -> usize {
        self.now.saturating_sub(RESERVED).max(self.now / 2).max(1).try_into().unwrap_or(usize::MAX)
    }
}

/// Raises the soft limit on open files to the hard limit.
pub fn raise() -> std::io::Result<Limit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given, which lives across the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let was = limit.rlim_cur;
    let hard = limit.rlim_max;
    // An unlimited hard limit still stops at the kernel's own (`nr_open`, 2^20 by default).
    for target in [limit.rlim_max, 1 << 20] {
        if target <= limit.rlim_cur || target > limit.rlim_max {
            continue;
        }
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(Limit { was, now: target, hard });
        }
    }
    Ok(Limit { was, now: was, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_database() {
        assert_eq!(Limit { was: 1024, now: 1024, hard: 1024 }.connections(), 960);
        assert_eq!(Limit { was: 100, now: 100, hard: 100 }.connections(), 50);
        assert_eq!(Limit { was: 1, now: 1, hard: 1 }.connections(), 1);
    }

    /// This test's own process (nextest runs each test in one) lowers its soft limit, as
    /// `ulimit -Sn 256` would, and `raise` brings it back up to the hard limit.
    #[test]
    fn a_low_soft_limit_is_raised_to_the_hard_one() {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in `raise`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        let lowered = libc::rlimit { rlim_cur: 256.min(limit.rlim_max), rlim_max: limit.rlim_max };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        let raised = raise().unwrap();
        assert_eq!(raised.was, lowered.rlim_cur);
        assert_eq!(raised.hard, limit.rlim_max);
        assert_eq!(raised.now, limit.rlim_max.min(1 << 20).max(lowered.rlim_cur), "{raised:?}");
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(limit.rlim_cur, raised.now, "the process's limit is the one reported");
    }
}
