//! Secrets: argon2id password hashes (PHC strings), BLAKE2b digests for API keys and the login
//! cache, random passwords, ids and keys, and constant-time comparison.
//!
//! Passwords are low-entropy, so they get a slow, salted hash (argon2id with the crate's default
//! cost); API keys are 128 random bits, so a fast digest is as safe for them and keeps every
//! request with a key cheap. Nothing here logs or formats a secret.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use subtle::ConstantTimeEq;

use super::SecurityError;

/// Shortest password accepted (Elasticsearch's minimum).
pub const MIN_PASSWORD_LEN: usize = 6;

fn random_bytes<const N: usize>() -> Result<[u8; N], SecurityError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| SecurityError::Internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, SecurityError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| SecurityError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| SecurityError::Internal(format!("hashing a password failed: {e}")))
}

/// Whether `password` matches the PHC string `hash` (argon2's own comparison is constant-time);
/// a malformed stored hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    #[cfg(test)]
    ARGON2_CHECKS.with(|n| n.set(n.get() + 1));
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
thread_local! {
    /// argon2 verifications run by this thread (the login tests count them).
    pub static ARGON2_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A hash no password matches (a random one), checked against when the user does not exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let password = random_token::<16>().unwrap_or_default();
        hash_password(&password).unwrap_or_default()
    })
}

/// BLAKE2b-256 of the parts, in order.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Blake2b::<U32>::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Constant-time equality of two digests or hex strings.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes, URL-safe base64 without padding (API key ids and secrets, like
/// Elasticsearch's 20- and 22-character ones).
pub fn random_token<const N: usize>() -> Result<String, SecurityError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// A random 20-character alphanumeric password (about 119 bits).
pub fn generate_password() -> Result<String, SecurityError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(20);
    while password.len() < 20 {
        for byte in random_bytes::<32>()? {
            // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
            if byte < 248 && password.len() < 20 {
                password.push(ALPHABET[(byte % 62) as usize] as char);
            }
        }
    }
    Ok(password)
}

/// A secret for keying in-memory digests, fresh per process.
pub fn process_key() -> Result<[u8; 32], SecurityError> {
    random_bytes::<32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let one = hash_password("s3cret-pw").unwrap();
        let two = hash_password("s3cret-pw").unwrap();
        assert!(one.starts_with("$argon2id$"), "{one}");
        assert_ne!(one, two, "salted");
        assert!(verify_password("s3cret-pw", &one));
        assert!(!verify_password("s3cret-pX", &one));
        assert!(!verify_password("s3cret-pw", "not a hash"));
        assert!(decoy_hash().starts_with("$argon2id$"));
    }

    #[test]
    fn tokens_and_passwords_are_random() {
        let password = generate_password().unwrap();
        assert_eq!(password.len(), 20);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(password, generate_password().unwrap());
        assert_eq!(random_token::<16>().unwrap().len(), 22);
        assert_eq!(random_token::<15>().unwrap().len(), 20);
        assert!(same(&digest(&[b"a", b"bc"]), &digest(&[b"a", b"bc"])));
        assert!(!same(&digest(&[b"ab", b"c"]), &digest(&[b"a", b"bc"])));
        assert_eq!(to_hex(&[0, 255]), "00ff");
    }
}
