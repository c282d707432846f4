//! Keyed hashing of token secrets, and the keys it uses.
//!
//! A store keeps `digest = BLAKE3-keyed(key, id ‖ secret)` (the id and secret
//! characters as they appear in the token) and the [`KeyId`] of the key that
//! made it. The key is a server-side secret (a "pepper") the embedding
//! service supplies: a copy of the database alone cannot test guesses.
//!
//! The secret is 256 random bits, so no guess can succeed and a slow password
//! hash would add nothing but cost; one BLAKE3 call takes nanoseconds.
//!
//! Several keys may be loaded at once, so a key can be replaced without
//! invalidating every token: new tokens use the newest key, older tokens
//! verify with the key recorded beside their digest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::error::{InvalidKeyId, KeyringError, RandomSourceError};
use crate::token::fill_random;

/// Names one hashing key, so a stored digest says which key made it.
/// Choose any numbering; a new key needs an id not used before.
///
/// Its text form is the number in decimal (`Display`, `FromStr` and serde
/// alike; serde writes a string, `"7"`, not a number). `FromStr` takes
/// exactly what `Display` writes: no sign, spaces or leading zeros.
///
/// ```
/// use api_tokens::KeyId;
///
/// let id: KeyId = "7".parse()?;
/// assert_eq!(id, KeyId::new(7));
/// assert_eq!(id.to_string(), "7");
/// assert!("07".parse::<KeyId>().is_err());
/// # Ok::<(), api_tokens::InvalidKeyId>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// The key id `id`.
    pub const fn new(id: u32) -> Self {
        KeyId(id)
    }

    /// The number this id was made from.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    /// Reads the decimal text `Display` writes, and nothing else.
    fn from_str(text: &str) -> Result<Self, InvalidKeyId> {
        let bytes = text.as_bytes();
        // `u32::from_str` alone would also take a `+` and leading zeros.
        let canonical = match bytes {
            [] => false,
            [b'0'] => true,
            [first, ..] => *first != b'0' && bytes.iter().all(u8::is_ascii_digit),
        };
        if !canonical {
            return Err(InvalidKeyId);
        }
        text.parse().map(KeyId).map_err(|_| InvalidKeyId)
    }
}

impl Serialize for KeyId {
    /// The decimal text, as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    /// The decimal text, as `FromStr` reads it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(deserializer, "a key id: a decimal number as a string")
    }
}

/// A 256-bit hashing key. Load it from your secret manager; never store it
/// beside the tokens. Its `Debug` is redacted and it is wiped on drop.
///
/// The bytes live in one heap block for the key's whole life: moving a
/// `HashKey` (into a [`Keyring`], a `Vec`) moves only a pointer, so no
/// unwiped copy is left behind in memory.
///
/// What wiping cannot reach: every hash copies the key into BLAKE3's
/// hasher state on the stack, where it stays until that stack memory is
/// reused (the `blake3` crate does not wipe it); and whatever buffers held
/// the key before it reached [`from_bytes`](Self::from_bytes) (your secret
/// manager's client, an environment variable's copy in the process) are
/// outside this type. Wiping on drop narrows what a later memory disclosure
/// can find; it is not a guarantee that no copy exists.
pub struct HashKey(Box<Zeroizing<[u8; 32]>>);

impl HashKey {
    /// A key from 32 bytes of key material (e.g. decoded from your secret
    /// manager), copied straight into the key's own heap block. `bytes` is
    /// borrowed, not moved, so no copy is left behind on the way in; wipe
    /// your buffer when you are done, or keep it in a
    /// [`Zeroizing`](zeroize::Zeroizing) that does:
    ///
    /// ```
    /// use api_tokens::HashKey;
    /// use zeroize::Zeroizing;
    ///
    /// let material = Zeroizing::new([7u8; 32]); // decoded from your secret store
    /// let key = HashKey::from_bytes(&material);
    /// drop(material); // wiped here; `key` keeps the only copy
    /// # drop(key);
    /// ```
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        key.copy_from_slice(bytes);
        HashKey(key)
    }

    /// A fresh key from the OS random source. Handy in tests and examples;
    /// a real service must load the same key on every start (and every
    /// instance), or no token it issued earlier will verify.
    ///
    /// # Errors
    ///
    /// When the operating system's random source fails.
    pub fn generate() -> Result<Self, RandomSourceError> {
        // Filled in place on the heap: the key never passes through the stack.
        let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
        fill_random(&mut bytes[..])?;
        Ok(HashKey(bytes))
    }

    /// The keyed digest of `input`.
    pub(crate) fn digest(&self, input: &[u8]) -> Digest {
        #[cfg(test)]
        counters::HASHES.with(|n| n.set(n.get() + 1));
        Digest(*blake3::keyed_hash(&self.0, input).as_bytes())
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey([redacted])")
    }
}

/// The hashing keys a service holds. The last key added is the current one:
/// new tokens are hashed with it. The others only verify older tokens.
///
/// ```
/// use api_tokens::{HashKey, KeyId, Keyring};
///
/// # let (old, new) = (HashKey::generate()?, HashKey::generate()?);
/// let keys = Keyring::from_keys([(KeyId::new(1), old), (KeyId::new(2), new)])?;
/// assert_eq!(keys.current_id(), KeyId::new(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Keyring {
    /// Never empty; the last entry is the current key.
    keys: Vec<(KeyId, HashKey)>,
}

impl Keyring {
    /// A keyring holding one key, which is therefore current.
    pub fn new(id: KeyId, key: HashKey) -> Self {
        Keyring {
            keys: vec![(id, key)],
        }
    }

    /// A keyring holding `keys`, oldest first: the last becomes current.
    ///
    /// # Errors
    ///
    /// [`KeyringError`] when `keys` is empty or names one id twice.
    pub fn from_keys(
        keys: impl IntoIterator<Item = (KeyId, HashKey)>,
    ) -> Result<Self, KeyringError> {
        let keys: Vec<_> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (index, (id, _)) in keys.iter().enumerate() {
            if keys[..index].iter().any(|(earlier, _)| earlier == id) {
                return Err(KeyringError::DuplicateId(*id));
            }
        }
        Ok(Keyring { keys })
    }

    /// The id of the key new tokens are hashed with.
    pub fn current_id(&self) -> KeyId {
        self.current().0
    }

    /// Every key id held, oldest first.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    pub(crate) fn current(&self) -> (KeyId, &HashKey) {
        let (id, key) = self.keys.last().expect("a keyring is never empty");
        (*id, key)
    }

    /// The key with id `id`, if this keyring still holds it.
    pub(crate) fn get(&self, id: KeyId) -> Option<&HashKey> {
        self.keys
            .iter()
            .find(|(held, _)| *held == id)
            .map(|(_, key)| key)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

/// A stored keyed hash of a token's id and secret: 32 bytes.
///
/// `==` on digests runs in constant time (through `subtle`), so no code can
/// compare them the fast, leaky way by accident. `Debug` does not print the
/// bytes; serde writes them as 64 lowercase hex digits, for stores that
/// persist records as text.
#[derive(Clone, Copy)]
pub struct Digest([u8; 32]);

impl Digest {
    /// A digest from its 32 bytes (as a store read them back).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The 32 bytes, for a store to persist.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn words(&self) -> [u64; 4] {
        let (words, _) = self.0.as_chunks::<8>();
        std::array::from_fn(|i| u64::from_le_bytes(words[i]))
    }
}

impl ConstantTimeEq for Digest {
    fn ct_eq(&self, other: &Self) -> Choice {
        #[cfg(test)]
        counters::COMPARISONS.with(|n| n.set(n.get() + 1));
        // Every bit of both digests is read and folded into one word with
        // XOR and OR, which take the same time whatever the values; `subtle`
        // then turns that word into a `Choice` without a branch. A 32-byte
        // compare this way costs a few instructions, not 32 of `subtle`'s
        // optimization barriers.
        let difference = self
            .words()
            .into_iter()
            .zip(other.words())
            .fold(0u64, |difference, (a, b)| difference | (a ^ b));
        difference.ct_eq(&0)
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Digest {}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(..)")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let invalid = || serde::de::Error::custom("a digest is 64 hexadecimal digits");
        if text.len() != 64 {
            return Err(invalid());
        }
        // `to_digit` takes exactly 0-9, a-f and A-F (`from_str_radix` would
        // also take a leading `+`).
        let nibble = |c: u8| char::from(c).to_digit(16).ok_or_else(invalid);
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let (high, low) = (nibble(pair[0])?, nibble(pair[1])?);
            *byte = (high << 4 | low) as u8; // two nibbles: at most 0xff
        }
        Ok(Digest(bytes))
    }
}

/// Counts of hashes and digest comparisons made on this thread, so unit tests
/// can prove that failing paths do the same work as succeeding ones.
#[cfg(test)]
pub(crate) mod counters {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static HASHES: Cell<u64> = const { Cell::new(0) };
        pub(crate) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// (hashes, comparisons) made on this thread so far.
    pub(crate) fn read() -> (u64, u64) {
        (HASHES.with(Cell::get), COMPARISONS.with(Cell::get))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_key_and_input() {
        let a = HashKey::from_bytes(&[1; 32]);
        let b = HashKey::from_bytes(&[2; 32]);
        assert!(a.digest(b"id-secret") == a.digest(b"id-secret"));
        assert!(a.digest(b"id-secret") != b.digest(b"id-secret"));
        assert!(a.digest(b"id-secret") != a.digest(b"id-secreT"));
    }

    #[test]
    fn digest_serde_round_trips_and_rejects_bad_hex() {
        let digest = HashKey::from_bytes(&[7; 32]).digest(b"x");
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json.len(), 66);
        assert!(serde_json::from_str::<Digest>(&json).unwrap() == digest);
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
        let not_hex = format!("\"{}\"", "g".repeat(64));
        assert!(serde_json::from_str::<Digest>(&not_hex).is_err());
        let non_ascii = format!("\"{}é\"", "0".repeat(62));
        assert!(serde_json::from_str::<Digest>(&non_ascii).is_err());
        let signed = format!("\"{}\"", "+f".repeat(32));
        assert!(serde_json::from_str::<Digest>(&signed).is_err());
        let upper = "AB".repeat(32);
        let digest: Digest = serde_json::from_str(&format!("\"{upper}\"")).unwrap();
        assert_eq!(digest.as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn keyring_refuses_empty_and_duplicates() {
        assert!(matches!(
            Keyring::from_keys(Vec::new()),
            Err(KeyringError::Empty)
        ));
        let keys = [
            (KeyId::new(1), HashKey::from_bytes(&[1; 32])),
            (KeyId::new(1), HashKey::from_bytes(&[2; 32])),
        ];
        assert!(matches!(
            Keyring::from_keys(keys),
            Err(KeyringError::DuplicateId(id)) if id == KeyId::new(1)
        ));
    }

    #[test]
    fn key_id_text_is_its_decimal_number() {
        for n in [0, 1, 7, 10, 4_294_967_295] {
            let id = KeyId::new(n);
            let text = id.to_string();
            assert_eq!(text, n.to_string());
            assert_eq!(text.parse::<KeyId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{n}\""));
            assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
        }
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            "00",
            " 1",
            "1 ",
            "1_000",
            "0x1",
            "4294967296",
            "١",
            "1e3",
        ] {
            assert_eq!(bad.parse::<KeyId>(), Err(InvalidKeyId), "{bad:?}");
        }
        assert!(serde_json::from_str::<KeyId>("1").is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = HashKey::from_bytes(&[0xab; 32]);
        assert_eq!(format!("{key:?}"), "HashKey([redacted])");
        let keys = Keyring::new(KeyId::new(3), key);
        assert_eq!(format!("{keys:?}"), "Keyring { key_ids: [KeyId(3)] }");
    }
}
