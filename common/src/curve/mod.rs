//! CurveZMQ (RFC 26) over ZMTP (ZMTP-CURVE, RFC 25): the server side for the ingress guard, the
//! client side for every connect.
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
//! | [`protocol`] | command layouts, nonce prefixes, box helpers, metadata and frame encoding |
//! | [`server`] | the pure server state machine of one connection: bytes in, bytes out |
//! | [`client`] | the pure client: [`client::Client`] (handshake, boxes) and [`client::Relay`] (zeromq NULL ⇄ CURVE server) |
//! | [`connect`] | the I/O shell of the client side: the relay every `tcp://` connect goes through with `--curve-server-key` |
//! | [`AllowDir`] | `--curve-allow DIR`: the client keys admitted, reloaded when DIR changes |

pub mod client;
pub mod connect;
pub mod keys;
pub mod protocol;
pub mod server;

use keys::PublicKey;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// `--curve-allow DIR`: the public keys of the zcert files in DIR. The directory's mtime is
/// checked at each handshake (one `stat`); when it changed (a file added, removed or renamed
/// in), the set is read again; [`AllowDir::reload`] (the guard calls it on SIGHUP) reads it at
/// once, for a file edited in place. Connections already admitted stay open.
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
        self.refresh(false);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .contains(key)
    }

    /// Reads DIR again now, whatever its mtime says (SIGHUP).
    pub fn reload(&self) {
        self.refresh(true);
    }

    fn refresh(&self, force: bool) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let mtime = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if force || (mtime.is_some() && mtime != loaded.0) {
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

#[cfg(test)]
mod tests {
    use super::keys::KeyPair;
    use super::*;

    #[test]
    fn the_allow_dir_follows_files_added_and_removed_and_reloads_on_demand() {
        let dir = std::env::temp_dir().join(format!("zallow-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let alice = KeyPair::generate();
        let bob = KeyPair::generate();
        alice.write_files(&dir, "alice").unwrap();
        std::fs::write(dir.join("README"), "not a certificate").unwrap();
        let allow = AllowDir::open(&dir).unwrap();
        // alice's public and secret files name the same key; README is skipped.
        assert_eq!(allow.len(), 1);
        assert!(allow.permits(&alice.public) && !allow.permits(&bob.public));
        std::fs::write(dir.join("bob"), bob.public_file("bob")).unwrap();
        // Directory mtimes may have a coarse granularity: force what a SIGHUP forces.
        allow.reload();
        assert!(allow.permits(&bob.public));
        std::fs::remove_file(dir.join("alice")).unwrap();
        std::fs::remove_file(dir.join("alice_secret")).unwrap();
        allow.reload();
        assert!(!allow.permits(&alice.public) && allow.permits(&bob.public));
        assert!(AllowDir::open(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
