//! zkeygen: writes a CURVE key pair as CZMQ's `zcert` files: `DIR/NAME` (public, give it to
//! peers) and `DIR/NAME_secret` (mode 0600, keep it). Prints the public key in Z85.
//!
//! ```sh
//! zkeygen --name server --dir keys       # keys/server, keys/server_secret
//! mdbroker --bind tcp://*:5555 --curve-secret keys/server_secret
//! ```

use clap::Parser;
use common::curve::keys::KeyPair;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a CURVE key pair (zcert files) for `--curve-secret` / `--curve-allow`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Name of the pair: the files are DIR/NAME and DIR/NAME_secret.
    #[arg(long, default_value = "server")]
    name: String,
    /// Directory to write the files into (created if missing, mode 0700).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Also write the public file as DIR/NAME (created if missing, mode 0700): a server's
    /// --curve-allow (or mdbroker's --worker-keys) directory, which then admits this pair.
    /// Repeatable. The secret file is never put there.
    #[arg(long, value_name = "DIR")]
    allow: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("E: zkeygen: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.name.is_empty() || args.name.contains('/') {
        return Err(format!("--name must be a file name, not {:?}", args.name));
    }
    make_dir(&args.dir)?;
    let pair = KeyPair::generate();
    let (public, secret) = pair
        .write_files(&args.dir, &args.name)
        .map_err(|e| e.to_string())?;
    println!("{}", pair.public);
    eprintln!(
        "I: zkeygen wrote {} (public) and {} (secret, mode 0600)",
        public.display(),
        secret.display()
    );
    for allow in &args.allow {
        make_dir(allow)?;
        let admitted = allow.join(&args.name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&admitted)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(pair.public_file(&args.name).as_bytes())
            })
            .map_err(|e| format!("{}: {e}", admitted.display()))?;
        eprintln!("I: zkeygen admitted it in {}", admitted.display());
    }
    Ok(())
}

/// Creates `dir` (and its parents) with mode 0700 if it is missing.
fn make_dir(dir: &std::path::Path) -> Result<(), String> {
    if dir.exists() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}
