//! What the bench targets share: the token layout restated without crate
//! code, token surgery, and a service over a memory store with realistic
//! tenants. Each bench target uses a different part.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use subtle::ConstantTimeEq;

use api_tokens::testing::ManualClock;
use api_tokens::{
    Actor, ActorId, DomainId, HashKey, KeyId, Keyring, MemoryStore, OrganizationId, Role, Scope,
    TokenFormat, TokenService,
};

pub const PREFIX: &str = "acme";
pub const ID_AT: usize = PREFIX.len() + 2;
pub const ID_LEN: usize = 11;
pub const SECRET_AT: usize = ID_AT + ID_LEN;
pub const SECRET_LEN: usize = 43;
pub const CHECKSUM_AT: usize = SECRET_AT + SECRET_LEN;
pub const CHECKSUM_LEN: usize = 6;
pub const TOKEN_LEN: usize = CHECKSUM_AT + CHECKSUM_LEN;
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The service's hashing key, known here so the floor can hash like it.
pub const KEY: [u8; 32] = [0x5a; 32];

/// Each byte's base62 value, or 0xff for a byte outside the alphabet.
const BASE62_VALUES: [u8; 256] = {
    let mut values = [0xff; 256];
    let mut digit = 0;
    while digit < BASE62.len() {
        values[BASE62[digit] as usize] = digit as u8;
        digit += 1;
    }
    values
};

/// Fixed-width base62 (at most 11 digits) as a number; `None` on a character
/// outside the alphabet or a value beyond u64. A table and one range check,
/// as fast as the crate's own decode, so the floor is not slowed by it.
pub fn decode_base62(digits: &[u8]) -> Option<u64> {
    let mut value = 0u128;
    let mut invalid = false;
    for &c in digits {
        let digit = BASE62_VALUES[usize::from(c)];
        invalid |= digit == 0xff;
        value = value * 62 + u128::from(digit);
    }
    if invalid {
        None
    } else {
        u64::try_from(value).ok()
    }
}

/// The checksum characters of a token body: its CRC32 as 6 base62 digits.
pub fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(body);
    let mut out = [0; CHECKSUM_LEN];
    for digit in out.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// `token` with the base62 character at `position` replaced by another and
/// the checksum fixed: well formed, but a different token.
pub fn altered(token: &str, position: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
    let sum = checksum(&bytes[..CHECKSUM_AT]);
    bytes[CHECKSUM_AT..].copy_from_slice(&sum);
    String::from_utf8(bytes).expect("ASCII")
}

/// Runs a future the memory store completes without waiting.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory store completes every call at once"),
    }
}

pub fn org_id(n: usize) -> OrganizationId {
    OrganizationId::new(&format!("org{n:013}")).unwrap()
}

pub fn domain_id(n: usize) -> DomainId {
    DomainId::new(&format!("dom{n:013}")).unwrap()
}

/// Token `i`'s scope: 1,000 organizations of 10 domains; one token in 11 is
/// an organization token. Ids are built afresh, as a service parsing a
/// request would.
pub fn scope_of(i: usize) -> Scope {
    let org = i % 1000;
    match (i / 1000) % 11 {
        10 => Scope::organization(org_id(org)),
        domain => Scope::domain(org_id(org), domain_id(org * 10 + domain)),
    }
}

pub fn admins() -> Vec<Actor> {
    (0..1000)
        .map(|org| {
            Actor::new(ActorId::new(&format!("admin{org:011}")).unwrap())
                .with_grant(Scope::organization(org_id(org)), Role::Admin)
        })
        .collect()
}

pub fn service(store: Arc<MemoryStore>, clock: &ManualClock) -> TokenService {
    TokenService::new(
        TokenFormat::new(PREFIX).unwrap(),
        Keyring::new(KeyId::new(1), HashKey::from_bytes(&KEY)),
        store,
    )
    .with_clock(Arc::new(clock.clone()))
}

/// A deterministic Fisher–Yates shuffle (xorshift), so runs compare.
pub fn shuffle<T>(items: &mut [T]) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

// ---------------------------------------------------------------------------
// Summaries computed from criterion's own estimates.

/// The benchmarks this run measured, as (group, function). Each is noted from
/// inside its benchmark's closure, which criterion calls only for the
/// benchmarks its filter lets run, so a summary never shows a figure left
/// over from an earlier run.
static RAN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Notes, from inside its closure, that a benchmark runs in this run.
pub fn ran(group: &str, function: &str) {
    RAN.lock()
        .unwrap()
        .push((group.to_owned(), function.to_owned()));
}

fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME").map_or_else(
        || {
            // The bench's scratch dir is `<target>/tmp`; criterion writes to
            // `<target>/criterion`.
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("the target dir")
                .join("criterion")
        },
        PathBuf::from,
    )
}

/// Criterion's typical time per iteration for a benchmark of this run, in
/// nanoseconds: the slope of its linear fit where it made one, else the mean
/// (what criterion itself reports as `time:`).
pub fn estimate_ns(group: &str, function: &str) -> Option<f64> {
    let ran = RAN.lock().unwrap();
    if !ran.iter().any(|(g, f)| g == group && f == function) {
        return None;
    }
    // Criterion names a benchmark's directory after its id with `/` made `_`.
    let path = criterion_dir()
        .join(group)
        .join(function.replace('/', "_"))
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// The CPU's model name, as the kernel reports it: timing differences
/// depend on the microarchitecture, so every figure says where it was taken.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The floor every verify figure is set beside: everything a correct verify
/// cannot skip (length and checksum check, id decode, a map lookup of the
/// id's digest, keyed BLAKE3 over id ‖ secret, a constant-time compare),
/// written with no crate code.
pub struct Floor {
    /// Each token's digest, by id.
    pub digests: HashMap<u64, [u8; 32], BuildHasherDefault<MultiplyHasher>>,
}

impl Floor {
    /// A floor sized for `tokens` tokens, empty.
    pub fn with_capacity(tokens: usize) -> Self {
        Floor {
            digests: HashMap::with_capacity_and_hasher(tokens, BuildHasherDefault::default()),
        }
    }

    /// Whether `token` is one of the floor's, checked as verify must.
    pub fn verify(&self, token: &[u8]) -> bool {
        if token.len() != TOKEN_LEN {
            return false;
        }
        let (body, sum) = token.split_at(CHECKSUM_AT);
        if decode_base62(sum) != Some(u64::from(crc32fast::hash(body))) {
            return false;
        }
        let Some(id) = decode_base62(&token[ID_AT..SECRET_AT]) else {
            return false;
        };
        let stored = self.digests.get(&id);
        let digest = blake3::keyed_hash(&KEY, hashed_part(token));
        let expected = stored.unwrap_or(&[0; 32]);
        let equal = words(digest.as_bytes()).ct_eq(&words(expected));
        bool::from(equal) & stored.is_some()
    }
}

/// The hash the memory store uses for its random ids (one multiplication),
/// so the floor's map is no slower than the store's.
#[derive(Default)]
pub struct MultiplyHasher(u64);

impl Hasher for MultiplyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 = bits.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("the floor's keys are u64s");
    }
}

/// A digest as four words, compared in constant time word by word: the same
/// guarantee as a byte-wise compare at a fraction of its cost.
fn words(digest: &[u8; 32]) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_le_bytes(digest[i * 8..i * 8 + 8].try_into().unwrap()))
}

/// The characters a token's digest covers: id ‖ secret.
pub fn hashed_part(token: &[u8]) -> &[u8] {
    &token[ID_AT..CHECKSUM_AT]
}
