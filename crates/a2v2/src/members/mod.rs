//! Members of the workspace: who may sign in to the dashboard, and with which role.

pub mod input;
pub mod rules;
pub mod service;
pub mod sessions;
pub mod throttle;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 1024;

/// Why a new password is refused, if it is.
pub fn password_error(password: &str) -> Option<String> {
    let count = password.chars().count();
    if count < PASSWORD_MIN {
        return Some(format!("must be at least {PASSWORD_MIN} characters"));
    }
    if count > PASSWORD_MAX {
        return Some(format!("must be at most {PASSWORD_MAX} characters"));
    }
    None
}

/// Who an Argon2 computation is for. Each kind has its own slots: at most this many run at
/// once (each needs about 19 MiB), and unauthenticated traffic — sign-ins, setup, invites —
/// cannot queue out the work of signed-in admins, nor the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Pool {
    /// Requests without a session: sign-in, setup, accepting an invite.
    Public,
    /// Signed-in admins and the command line.
    Members,
}

fn slots(pool: Argon2Pool) -> &'static tokio::sync::Semaphore {
    static PUBLIC: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    static MEMBERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let cell = match pool {
        Argon2Pool::Public => &PUBLIC,
        Argon2Pool::Members => &MEMBERS,
    };
    cell.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Argon2 computations since start, for `/metrics`.
pub fn argon2_runs() -> u64 {
    ARGON2_RUNS.load(std::sync::atomic::Ordering::Relaxed)
}

static ARGON2_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Argon2id hash; run it off the async threads, it is deliberately slow.
pub async fn hash_password(password: String, pool: Argon2Pool) -> anyhow::Result<String> {
    let _slot = slots(pool).acquire().await?;
    ARGON2_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing a password failed: {err}"))
    })
    .await?
}

/// Verifies `password` against `hash`; with no hash, spends the same time and fails, so that
/// unknown emails cannot be told apart by timing.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let Ok(_slot) = slots(Argon2Pool::Public).acquire().await else {
        return false;
    };
    ARGON2_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (dummy_hash(), false),
        };
        let matches = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        matches && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"no such member; never matches", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}
