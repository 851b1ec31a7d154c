//! The largest value of each kind of number a program is configured with (flags, scenario
//! files, `netfault` commands): one day of milliseconds, a billion requests, …. The parsers in
//! `cli` (feature `cli`) check flags against them; the libraries use them where a value comes
//! from elsewhere, so the same kind of value has the same range everywhere.

/// Largest millisecond value of any flag: one day. Longer is a typo, not a setting.
pub const MS_MAX: u64 = 86_400_000;
/// Largest count (requests, rounds, remembered ids): a billion.
pub const COUNT_MAX: u64 = 1_000_000_000;
/// Most requests under way or held at once (a window, a pending queue): each costs memory.
pub const IN_FLIGHT_MAX: u64 = 1_000_000;
/// Most connections or workers side by side: each holds sockets and descriptors.
pub const PARALLEL_MAX: u64 = 1000;
/// Largest liveness. The Guide finds 3-5 reasonable; more only delays noticing a dead peer.
pub const LIVENESS_MAX: u32 = 100;
/// Most attempts per request.
pub const TRIES_MAX: u32 = 1000;
/// Largest byte threshold: 1 TiB.
pub const BYTES_MAX: u64 = 1 << 40;
