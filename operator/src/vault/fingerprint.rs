//! The keys of deliveries' fingerprints: a keyed hash, in OpenBao's transit
//! engine, of the export's uid, under a key made not exportable. The key
//! itself never leaves OpenBao; a delivery's key is derived again, with the
//! recorded key version, to trace a copy.

use base64::Engine as _;
use vaultrs::api::transit::KeyType;
use vaultrs::api::transit::requests::{CreateKeyRequest, GenerateHmacRequest};

use super::Error;
use super::openbao::{OpenBao, not_found};
use crate::audit::checkpointer::TRANSIT_MOUNT;
use crate::fingerprint::Key;

/// The transit key deliveries' keys are derived with.
pub const FINGERPRINT_KEY: &str = "export-fingerprint";

/// What is hashed for a delivery's key.
pub fn delivery_input(export_uid: &str) -> Vec<u8> {
    [
        b"publicdata export fingerprint\0".as_slice(),
        export_uid.as_bytes(),
    ]
    .concat()
}

/// `vault:v3:<base64>` as (3, its 32 bytes).
pub fn parse_hmac(hmac: &str) -> Option<(u64, Key)> {
    let rest = hmac.strip_prefix("vault:v")?;
    let (version, encoded) = rest.split_once(':')?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    Some((version.parse().ok()?, Key(bytes.try_into().ok()?)))
}

impl OpenBao {
    /// The key of the delivery of export `export_uid` (with the transit key's
    /// `version`, or the latest), and the version used. The transit key is
    /// made on first use, not exportable.
    pub(super) async fn derive_delivery_key(
        &self,
        export_uid: &str,
        version: Option<u64>,
    ) -> Result<(u64, Key), Error> {
        let path = format!("{TRANSIT_MOUNT}/hmac/{FINGERPRINT_KEY}");
        let input = base64::engine::general_purpose::STANDARD.encode(delivery_input(export_uid));
        let client = &self.session().client;
        let hmac = |client| {
            let input = input.clone();
            async move {
                let mut opts = GenerateHmacRequest::builder();
                if let Some(v) = version {
                    opts.key_version(v);
                }
                vaultrs::transit::generate::hmac(
                    client,
                    TRANSIT_MOUNT,
                    FINGERPRINT_KEY,
                    &input,
                    Some(&mut opts),
                )
                .await
            }
        };
        let answer = match hmac(client).await {
            Ok(a) => a,
            Err(e) if version.is_none() && missing_key(&e) => {
                let mut opts = CreateKeyRequest::builder();
                opts.key_type(KeyType::Aes256Gcm96).exportable(false);
                vaultrs::transit::key::create(
                    client,
                    TRANSIT_MOUNT,
                    FINGERPRINT_KEY,
                    Some(&mut opts),
                )
                .await
                .map_err(|source| Error::WriteSecret {
                    path: format!("{TRANSIT_MOUNT}/keys/{FINGERPRINT_KEY}"),
                    source,
                })?;
                hmac(client).await.map_err(|source| Error::WriteSecret {
                    path: path.clone(),
                    source,
                })?
            }
            Err(source) => return Err(Error::WriteSecret { path, source }),
        };
        parse_hmac(&answer.hmac).ok_or_else(|| {
            Error::Settings(format!(
                "{path} answered a keyed hash this operator does not read ({} characters)",
                answer.hmac.len()
            ))
        })
    }
}

/// Transit answers 400 "encryption key not found" for a key not made yet.
fn missing_key(e: &vaultrs::error::ClientError) -> bool {
    match e {
        vaultrs::error::ClientError::APIError { code: 400, errors } => errors
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("key not found")),
        other => not_found(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transit_hmac_reads_as_version_and_key() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            parse_hmac(&format!("vault:v3:{b64}")),
            Some((3, Key([7; 32])))
        );
        assert_eq!(parse_hmac("vault:v3:AAAA"), None, "not 32 bytes");
        assert_eq!(parse_hmac(&format!("v3:{b64}")), None);
    }
}
