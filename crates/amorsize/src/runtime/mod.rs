//! Pools of sleeping threads: started once, woken for a parallel section, handed chunks. No
//! planning here; the executor ([`exec`](crate::exec)) runs plans on these pools and the
//! calibration ([`calibrate`](crate::calibrate)) times them. With `exec`, the only module that
//! starts threads.

pub(crate) mod bench;
pub(crate) mod pool;
pub(crate) mod watch;
