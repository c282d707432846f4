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
//!
//! Keys arrive as text (an environment variable, a secret manager's value):
//! [`HashKey::from_hex`], [`HashKey::from_base64`] and
//! [`Keyring::from_config`] read it, take it by value and wipe it, and
//! [`HashKey::generate_text`] makes a new key's text for an operator.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::error::{
    InvalidKeyId, KeyTextError, KeyringConfigError, KeyringError, RandomSourceError,
};
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

    /// A key from 64 hexadecimal digits (either case), as
    /// [`generate_text`](Self::generate_text) writes them. Whitespace around
    /// the digits (a newline at the end of a file) is ignored.
    ///
    /// `text` is taken by value and wiped before this returns, whether it
    /// was a key or not; the bytes go straight into the key's own heap
    /// block, with no other buffer on the way.
    ///
    /// ```
    /// use api_tokens::HashKey;
    ///
    /// # let from_your_secret_manager = || "00".repeat(32);
    /// let key = HashKey::from_hex(from_your_secret_manager())?;
    /// # drop(key);
    /// # Ok::<(), api_tokens::KeyTextError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyTextError`] when the text is empty, not 64 characters long or
    /// holds a character that is not a hexadecimal digit. The error holds
    /// lengths and positions only, never a character of the text.
    pub fn from_hex(text: String) -> Result<Self, KeyTextError> {
        let text = Zeroizing::new(text);
        parse_hex(text.trim())
    }

    /// A key from its 32 bytes in base64: the standard alphabet (`+` and
    /// `/`) or the URL-safe one (`-` and `_`), with or without the final
    /// `=` (43 characters, or 44 ending in `=`). Whitespace around it is
    /// ignored.
    ///
    /// `text` is taken by value and wiped before this returns, whether it
    /// was a key or not, as is the buffer the bytes are decoded into. (The
    /// decoder's few words of working state on the stack are not.)
    ///
    /// ```
    /// use api_tokens::HashKey;
    ///
    /// let key = HashKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned())?;
    /// # drop(key);
    /// # Ok::<(), api_tokens::KeyTextError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyTextError`] when the text is empty, of the wrong length, holds
    /// a character outside both alphabets (or both `+`/`/` and `-`/`_`), or
    /// ends in a character whose spare bits are set (altered or cut short).
    /// The error holds lengths and positions only, never a character of
    /// the text.
    pub fn from_base64(text: String) -> Result<Self, KeyTextError> {
        let text = Zeroizing::new(text);
        parse_base64(text.trim())
    }

    /// A new random key, as the 64 lowercase hexadecimal digits
    /// [`from_hex`](Self::from_hex) (and [`Keyring::from_config`]) read:
    /// what an operator stores in the secret manager when adding a key.
    /// The text is wiped when the returned value is dropped; build on it in
    /// place, as below, so no unwiped copy is made.
    ///
    /// ```
    /// use api_tokens::{HashKey, KeyId, Keyring, Zeroizing};
    ///
    /// // A configuration entry for key 3: `3:<64 hex digits>`. Rotating
    /// // later puts the new entry first and keeps the old ones after it:
    /// // `4:<new key>,3:<this key>`.
    /// let key = HashKey::generate_text()?;
    /// let mut entry = Zeroizing::new(String::with_capacity(16 + key.len()));
    /// entry.push_str("3:");
    /// entry.push_str(&key);
    /// # let text = std::mem::take(&mut *entry);
    /// # assert_eq!(Keyring::from_config(text)?.current_id(), KeyId::new(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the operating system's random source fails.
    pub fn generate_text() -> Result<Zeroizing<String>, RandomSourceError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(&mut bytes[..])?;
        // Sized once, so pushing never moves the text and leaves no copy.
        let mut text = Zeroizing::new(String::with_capacity(64));
        for byte in bytes.iter() {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        Ok(text)
    }

    /// The keyed digest of `input`.
    pub(crate) fn digest(&self, input: &[u8]) -> Digest {
        #[cfg(test)]
        counters::HASHES.with(|n| n.set(n.get() + 1));
        Digest(*blake3::keyed_hash(&self.0, input).as_bytes())
    }
}

/// Lowercase hexadecimal digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Characters of a key in hex.
const HEX_KEY_LEN: usize = 64;
/// Characters of a key in base64 without padding (44 with its one `=`).
const BASE64_KEY_LEN: usize = 43;

/// A key from its hex text, already trimmed. Positions in errors count from
/// the text's first byte.
fn parse_hex(text: &str) -> Result<HashKey, KeyTextError> {
    if text.is_empty() {
        return Err(KeyTextError::Empty);
    }
    if text.len() != HEX_KEY_LEN {
        return Err(KeyTextError::WrongLength {
            expected: "64 hexadecimal digits",
            found: text.len(),
        });
    }
    // Decoded straight into the key's own heap block: no other copy.
    let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
    for (index, (byte, pair)) in bytes
        .iter_mut()
        .zip(text.as_bytes().chunks_exact(2))
        .enumerate()
    {
        // `to_digit` takes exactly 0-9, a-f and A-F.
        let nibble = |offset: usize| {
            char::from(pair[offset])
                .to_digit(16)
                .ok_or(KeyTextError::InvalidCharacter {
                    position: 2 * index + offset,
                })
        };
        let (high, low) = (nibble(0)?, nibble(1)?);
        *byte = (high << 4 | low) as u8; // two nibbles: at most 0xff
    }
    Ok(HashKey(bytes))
}

/// A key from its base64 text (either alphabet, `=` optional), already
/// trimmed. Positions in errors count from the text's first byte.
fn parse_base64(text: &str) -> Result<HashKey, KeyTextError> {
    if text.is_empty() {
        return Err(KeyTextError::Empty);
    }
    let unpadded = match text.len() {
        BASE64_KEY_LEN => text,
        44 if text.ends_with('=') => &text[..BASE64_KEY_LEN],
        found => {
            return Err(KeyTextError::WrongLength {
                expected: "43 base64 characters, or 44 ending in `=`",
                found,
            });
        }
    };
    // One alphabet per key: URL-safe if it has a character only that
    // alphabet has, else standard. A mix is refused at its first character
    // of the other alphabet.
    let url_safe = unpadded.bytes().any(|b| b == b'-' || b == b'_');
    let (extra, engine): ([u8; 2], &GeneralPurpose) = if url_safe {
        ([b'-', b'_'], &URL_SAFE_NO_PAD)
    } else {
        ([b'+', b'/'], &STANDARD_NO_PAD)
    };
    // Checked here rather than mapped from the codec's error, whose kinds
    // and offsets depend on its version.
    if let Some(position) = unpadded
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || extra.contains(&b)))
    {
        return Err(KeyTextError::InvalidCharacter { position });
    }
    // The codec wants room for 33 bytes from 43 characters (its estimate
    // rounds up); the buffer is wiped on drop, whatever happens.
    let mut buffer = Zeroizing::new([0u8; 36]);
    match engine.decode_slice(unpadded, &mut buffer[..]) {
        Ok(32) => Ok(HashKey::from_bytes(
            buffer[..32].try_into().expect("32 bytes"),
        )),
        // 43 characters of the alphabet decode to 32 bytes, unless the
        // last one carries bits beyond them.
        _ => Err(KeyTextError::InvalidLastCharacter {
            position: BASE64_KEY_LEN - 1,
        }),
    }
}

/// A key from hex or base64, told apart by length (64 characters are hex,
/// 43 or 44 base64: a 32-byte key has no length both could have).
fn parse_key(text: &str) -> Result<HashKey, KeyTextError> {
    match text.len() {
        0 => Err(KeyTextError::Empty),
        HEX_KEY_LEN => parse_hex(text),
        43 | 44 => parse_base64(text),
        found => Err(KeyTextError::WrongLength {
            expected: "64 hexadecimal digits, or 43 base64 characters (44 ending in `=`)",
            found,
        }),
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

    /// A keyring from one line of configuration, **current key first**:
    /// `id:key` entries separated by commas, such as `3:<key>,2:<key>`.
    /// The first entry is the current key (new tokens are hashed with it);
    /// the others only verify tokens issued under them. To rotate, put the
    /// new key's entry in front and keep the old entries after it until
    /// their tokens are gone. (This is the reverse of
    /// [`from_keys`](Self::from_keys), which takes keys oldest first: a
    /// configuration is read, and edited, from the front.)
    ///
    /// An id is a [`KeyId`] in decimal; a key is 32 bytes as 64 hex digits
    /// or in base64 (either alphabet, `=` optional), told apart by length.
    /// Whitespace around entries, ids and keys is ignored, so the value
    /// may be wrapped over lines.
    ///
    /// `text` is taken by value and wiped before this returns, whether it
    /// held a keyring or not (as are the buffers the keys are decoded in).
    ///
    /// ```
    /// use api_tokens::{KeyId, Keyring};
    ///
    /// // In production, e.g. `std::env::var("TOKEN_HASH_KEYS")?`.
    /// let config = format!("2:{}, 1:{}", "ab".repeat(32), "A".repeat(43));
    /// let keys = Keyring::from_config(config)?;
    /// assert_eq!(keys.current_id(), KeyId::new(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Where the text came from is outside this function: a variable read
    /// with `std::env::var` also stays in the process environment.
    ///
    /// # Errors
    ///
    /// [`KeyringConfigError`] naming the first bad entry (counting from 1)
    /// and its problem: an empty configuration or entry, a missing `:`, an
    /// id that is not a key id or repeats an earlier one, or a key that is
    /// not 32 bytes in hex or base64. No error holds a character of the
    /// text.
    pub fn from_config(text: String) -> Result<Self, KeyringConfigError> {
        let text = Zeroizing::new(text);
        if text.trim().is_empty() {
            return Err(KeyringConfigError::Empty);
        }
        let mut keys = Vec::new();
        let mut entries = BTreeMap::new();
        for (index, entry) in text.split(',').enumerate() {
            let entry_number = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(KeyringConfigError::EmptyEntry {
                    entry: entry_number,
                });
            }
            let Some((id, key)) = entry.split_once(':') else {
                return Err(KeyringConfigError::MissingColon {
                    entry: entry_number,
                });
            };
            let id: KeyId = id
                .trim()
                .parse()
                .map_err(|source| KeyringConfigError::InvalidId {
                    entry: entry_number,
                    source,
                })?;
            if let Some(&first) = entries.get(&id) {
                return Err(KeyringConfigError::DuplicateId {
                    entry: entry_number,
                    first,
                    id,
                });
            }
            let key = parse_key(key.trim()).map_err(|source| KeyringConfigError::InvalidKey {
                entry: entry_number,
                source,
            })?;
            entries.insert(id, entry_number);
            keys.push((id, key));
        }
        // Held oldest first, so the entry written first is the current key.
        keys.reverse();
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
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0xf)];
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
