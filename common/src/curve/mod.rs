//! CurveZMQ (RFC 26) over ZMTP (ZMTP-CURVE, RFC 25), server side, for the ingress guard.
//!
//! The `zeromq` crate speaks only the NULL mechanism, so the guard does CURVE for it: it
//! performs the handshake with the remote peer, then turns each MESSAGE into a plain frame on
//! the private NULL hop to zeromq, and each frame from zeromq into a MESSAGE (see
//! [`crate::guard`]). Crypto comes from RustCrypto's `crypto_box` (the NaCl box) and
//! `crypto_secretbox` (the cookie); nothing here is a hand-written primitive.
//!
//! | module | what it holds |
//! |---|---|
//! | [`keys`] | key pairs, Z85 text, `zcert` key files (`zkeygen` writes them) |
//! | [`wire`] | command layouts, nonce prefixes, box helpers, metadata and frame encoding |
//! | [`server`] | the pure server state machine of one connection: bytes in, bytes out |
//! | [`client`] | a pure client from the same primitives (tests; the client side comes later) |
//! | [`AllowDir`] | `--curve-allow DIR`: the client keys admitted, reloaded when DIR changes |

pub mod client;
pub mod keys;
pub mod server;
pub mod wire;

use keys::PublicKey;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// `--curve-allow DIR`: the public keys of the zcert files in DIR. The directory's mtime is
/// checked at each handshake (one `stat`); when it changed (a file added, removed or renamed
/// in), the set is read again. Connections already admitted stay open.
#[derive(Debug)]
pub struct AllowDir {
    dir: PathBuf,
    loaded: Mutex<(Option<SystemTime>, HashSet<PublicKey>)>,
}

impl AllowDir {
    /// Reads DIR once (an unreadable DIR is a startup error, as a bad flag is).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let allow = Self {
            dir: dir.to_owned(),
            loaded: Mutex::new((None, HashSet::new())),
        };
        let mtime = std::fs::metadata(dir)?.modified()?;
        let keys = read_dir_keys(dir)?;
        *allow.loaded.lock().unwrap_or_else(PoisonError::into_inner) = (Some(mtime), keys);
        Ok(allow)
    }

    /// True if `key` has a file in DIR now (reloading DIR first if it changed).
    pub fn permits(&self, key: &PublicKey) -> bool {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let mtime = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if mtime.is_some() && mtime != loaded.0 {
            match read_dir_keys(&self.dir) {
                Ok(keys) => {
                    tracing::info!(
                        "curve: {} client keys allowed from {}",
                        keys.len(),
                        self.dir.display()
                    );
                    *loaded = (mtime, keys);
                }
                // Keep the last good set: a directory being edited must not admit everyone.
                Err(e) => tracing::warn!("curve: cannot read {}: {e}", self.dir.display()),
            }
        }
        loaded.1.contains(key)
    }

    /// Keys admitted now.
    pub fn len(&self) -> usize {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len()
    }

    /// True if no key is admitted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The public keys of every zcert file in `dir` (files that are not certificates are skipped
/// with a warning, so one stray file does not lock everyone out).
fn read_dir_keys(dir: &Path) -> std::io::Result<HashSet<PublicKey>> {
    let mut keys = HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        match keys::read_public(&path) {
            Ok(key) => {
                keys.insert(key);
            }
            Err(e) => tracing::warn!("curve: --curve-allow skips {e}"),
        }
    }
    Ok(keys)
}
