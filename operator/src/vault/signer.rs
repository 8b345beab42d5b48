//! The audit log's checkpoints, signed by OpenBao's transit engine.

use async_trait::async_trait;

use vaultrs::api::sys::requests::EnableEngineRequest;

use super::Error;
use super::openbao::{OpenBao, no_mount, not_found};

/// Checkpoints of the audit chain are signed by OpenBao's transit engine; the
/// key is created not exportable, and the operator's policy cannot change that.
#[async_trait]
impl crate::audit::checkpointer::Signer for OpenBao {
    async fn ensure_key(&self) -> Result<(), Error> {
        use crate::audit::checkpointer::{SIGNING_KEY, TRANSIT_MOUNT};
        let client = &self.session().client;
        match vaultrs::sys::mount::get_configuration_of_a_secret_engine(client, TRANSIT_MOUNT).await
        {
            Ok(m) if m.mount_type == "transit" => {}
            Ok(m) => {
                return Err(Error::WrongMountType {
                    path: TRANSIT_MOUNT.into(),
                    found: m.mount_type,
                });
            }
            Err(e) if no_mount(&e) => {
                let mut opts = EnableEngineRequest::builder();
                opts.description(super::mount_description("publicdata-operator audit anchor"));
                vaultrs::sys::mount::enable(client, TRANSIT_MOUNT, "transit", Some(&mut opts))
                    .await
                    .map_err(|source| Error::EnableMount {
                        path: TRANSIT_MOUNT.into(),
                        source,
                    })?;
            }
            Err(source) => {
                return Err(Error::ReadMount {
                    path: TRANSIT_MOUNT.into(),
                    source,
                });
            }
        }
        match vaultrs::transit::key::read(client, TRANSIT_MOUNT, SIGNING_KEY).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => {
                let mut opts = vaultrs::api::transit::requests::CreateKeyRequest::builder();
                opts.key_type(vaultrs::api::transit::KeyType::Ed25519)
                    .exportable(false);
                vaultrs::transit::key::create(client, TRANSIT_MOUNT, SIGNING_KEY, Some(&mut opts))
                    .await
                    .map_err(|source| Error::WriteSecret {
                        path: format!("{TRANSIT_MOUNT}/keys/{SIGNING_KEY}"),
                        source,
                    })
            }
            Err(source) => Err(Error::List {
                path: format!("{TRANSIT_MOUNT}/keys/{SIGNING_KEY}"),
                source,
            }),
        }
    }

    async fn sign(&self, message: &[u8]) -> Result<String, Error> {
        use crate::audit::checkpointer::{SIGNING_KEY, TRANSIT_MOUNT};
        use base64::Engine as _;
        let input = base64::engine::general_purpose::STANDARD.encode(message);
        vaultrs::transit::data::sign(
            &self.session().client,
            TRANSIT_MOUNT,
            SIGNING_KEY,
            &input,
            None,
        )
        .await
        .map(|r| r.signature)
        .map_err(|source| Error::WriteSecret {
            path: format!("{TRANSIT_MOUNT}/sign/{SIGNING_KEY}"),
            source,
        })
    }

    async fn public_keys(&self) -> Result<crate::audit::anchor::PublicKeys, Error> {
        use crate::audit::checkpointer::{SIGNING_KEY, TRANSIT_MOUNT};
        let path = format!("{TRANSIT_MOUNT}/keys/{SIGNING_KEY}");
        let key = vaultrs::transit::key::read(&self.session().client, TRANSIT_MOUNT, SIGNING_KEY)
            .await
            .map_err(|source| Error::List {
                path: path.clone(),
                source,
            })?;
        match key.keys {
            vaultrs::api::transit::responses::ReadKeyData::Asymmetric(keys) => Ok(keys
                .into_iter()
                .filter_map(|(version, k)| Some((version.parse().ok()?, k.public_key)))
                .collect()),
            vaultrs::api::transit::responses::ReadKeyData::Symmetric(_) => {
                Err(Error::WrongMountType {
                    path,
                    found: "a symmetric key".into(),
                })
            }
        }
    }
}
