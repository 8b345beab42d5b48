//! Key records that outlive the tenant: written to object
//! storage under a retention lock in compliance mode, which nobody (the
//! operator, the platform's admins, the store's own root) can shorten,
//! overwrite or delete before it ends.
//!
//! An offboarding writes each record of the authorization as one object
//! under `<tenant>/<uid>/`, then `manifest.json` naming each with its SHA-256,
//! reads everything back, and checks every digest and every lock. The
//! manifest's digest goes into the audit chain, so the archive and the chain
//! vouch for each other. The store is a trait: [`S3Store`] (any S3 with
//! Object Lock) in a cluster, [`MemoryStore`] in unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The retention mode every record is written in.
pub const MODE: &str = "COMPLIANCE";
/// The manifest's name in an archive.
pub const MANIFEST: &str = "manifest.json";
/// Key records are kept this many years (R-33: no less than 20).
pub const KEY_RECORD_YEARS: i16 = 20;

/// Errors of the records store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the records store ({location}): {message}")]
    Store { location: String, message: String },
    #[error("{key} is in the records store with other content: it is never overwritten")]
    Differs { key: String },
    #[error("{key} is missing from the records store")]
    Missing { key: String },
    #[error("{key} does not match its manifest: sha256 {found}, expected {expected}")]
    Digest {
        key: String,
        found: String,
        expected: String,
    },
    #[error("{key} is not locked as required ({found}; expected {MODE} until at least {until})")]
    NotLocked {
        key: String,
        found: String,
        until: String,
    },
    #[error("the manifest {key} is unreadable: {message}")]
    Manifest { key: String, message: String },
}

/// An object as stored, with its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    /// The retention mode and until when, if locked.
    pub lock: Option<(String, jiff::Timestamp)>,
}

/// Where key records go.
#[async_trait]
pub trait Store: Send + Sync {
    /// Where, for people: `s3://bucket`.
    fn location(&self) -> String;
    /// Writes `bytes` at `key`, locked in compliance mode until `until`. An
    /// object there with the same bytes is left as it is (a restart after the
    /// write); with other bytes it is an error ([`Error::Differs`]).
    async fn put_locked(
        &self,
        key: &str,
        bytes: &[u8],
        until: jiff::Timestamp,
    ) -> Result<(), Error>;
    /// The object at `key`, with its lock (None when there is none).
    async fn get(&self, key: &str) -> Result<Option<Stored>, Error>;
    /// The keys under `prefix`, with their sizes, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error>;
    /// The keys under `prefix` after `start_after`, in key order.
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<Listed>, Error> {
        let mut listed = self.list(prefix).await?;
        listed.retain(|l| l.key.as_str() > start_after);
        Ok(listed)
    }
    /// Whether anything is stored under `prefix`.
    async fn any(&self, prefix: &str) -> Result<bool, Error> {
        Ok(!self.list(prefix).await?.is_empty())
    }
}

/// A key in a listing, with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub bytes: u64,
}

/// One record in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The authorization (tenant id) and its uid.
    pub authorization: String,
    pub uid: String,
    /// When it was written (RFC 3339).
    pub written: String,
    /// The lock: mode and until when (RFC 3339).
    pub mode: String,
    pub retain_until: String,
    pub objects: Vec<Object>,
}

/// An archive written and read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// `s3://bucket/tenant/uid/`.
    pub location: String,
    pub manifest: Manifest,
    /// SHA-256 of `manifest.json` as stored.
    pub digest: String,
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The prefix of an authorization's archive.
pub fn prefix(tenant: &str, uid: &str) -> String {
    format!("{tenant}/{uid}/")
}

/// `years` from `now`, in UTC, to the second (what S3 keeps of a date).
pub fn years_after(now: jiff::Timestamp, years: i16) -> jiff::Timestamp {
    now.to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().years(years))
        .ok()
        .and_then(|z| jiff::Timestamp::from_second(z.timestamp().as_second()).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

/// Writes the records `files` of an authorization, then the manifest, each
/// locked until `until`, and verifies them all. A restart finds what was
/// written already and goes on (the manifest, once there, is the archive).
pub async fn write(
    store: &dyn Store,
    tenant: &str,
    uid: &str,
    files: &[(&str, Vec<u8>)],
    until: jiff::Timestamp,
) -> Result<Archived, Error> {
    let base = prefix(tenant, uid);
    if store.get(&format!("{base}{MANIFEST}")).await?.is_none() {
        for (name, bytes) in files {
            store
                .put_locked(&format!("{base}{name}"), bytes, until)
                .await?;
        }
        let manifest = Manifest {
            authorization: tenant.into(),
            uid: uid.into(),
            written: jiff::Timestamp::now().to_string(),
            mode: MODE.into(),
            retain_until: until.to_string(),
            objects: files
                .iter()
                .map(|(name, bytes)| Object {
                    name: (*name).into(),
                    sha256: sha256(bytes),
                    bytes: bytes.len() as u64,
                })
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        store
            .put_locked(&format!("{base}{MANIFEST}"), &text, until)
            .await?;
    }
    verify(store, tenant, uid).await
}

/// Writes one more record beside an archive (the disposal certificate) and
/// reads it back: its bytes and its lock.
pub async fn put_verified(
    store: &dyn Store,
    key: &str,
    bytes: &[u8],
    until: jiff::Timestamp,
) -> Result<(), Error> {
    store.put_locked(key, bytes, until).await?;
    let got = store
        .get(key)
        .await?
        .ok_or(Error::Missing { key: key.into() })?;
    if got.bytes != bytes {
        return Err(Error::Digest {
            key: key.into(),
            found: sha256(&got.bytes),
            expected: sha256(bytes),
        });
    }
    locked(key, &got, until)
}

/// Reads an archive back: the manifest, and every object it names, each
/// matching its digest and locked in compliance mode at least as long.
pub async fn verify(store: &dyn Store, tenant: &str, uid: &str) -> Result<Archived, Error> {
    let base = prefix(tenant, uid);
    let key = format!("{base}{MANIFEST}");
    let stored = store
        .get(&key)
        .await?
        .ok_or(Error::Missing { key: key.clone() })?;
    let manifest: Manifest =
        serde_json::from_slice(&stored.bytes).map_err(|e| Error::Manifest {
            key: key.clone(),
            message: e.to_string(),
        })?;
    let until: jiff::Timestamp = manifest.retain_until.parse().map_err(|e| Error::Manifest {
        key: key.clone(),
        message: format!("retainUntil: {e}"),
    })?;
    locked(&key, &stored, until)?;
    for object in &manifest.objects {
        let key = format!("{base}{}", object.name);
        let got = store
            .get(&key)
            .await?
            .ok_or(Error::Missing { key: key.clone() })?;
        let found = sha256(&got.bytes);
        if found != object.sha256 {
            return Err(Error::Digest {
                key,
                found,
                expected: object.sha256.clone(),
            });
        }
        locked(&key, &got, until)?;
    }
    Ok(Archived {
        location: format!("{}/{base}", store.location()),
        digest: sha256(&stored.bytes),
        manifest,
    })
}

fn locked(key: &str, stored: &Stored, until: jiff::Timestamp) -> Result<(), Error> {
    match &stored.lock {
        // S3 keeps the date to the second.
        Some((mode, at)) if mode == MODE && at.as_second() >= until.as_second() => Ok(()),
        other => Err(Error::NotLocked {
            key: key.into(),
            found: match other {
                Some((mode, at)) => format!("{mode} until {at}"),
                None => "no lock".into(),
            },
            until: until.to_string(),
        }),
    }
}

/// Any S3 with Object Lock (the bucket created with it enabled).
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Store {
    pub fn new(s: &S3Settings) -> Self {
        let credentials = aws_sdk_s3::config::Credentials::new(
            &s.access_key,
            &s.secret_key,
            None,
            None,
            "publicdata-operator",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&s.endpoint)
            .region(aws_sdk_s3::config::Region::new(s.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: s.bucket.clone(),
        }
    }

    fn error(&self, e: impl std::error::Error) -> Error {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Error::Store {
            location: self.location(),
            message,
        }
    }
}

#[async_trait]
impl Store for S3Store {
    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn put_locked(
        &self,
        key: &str,
        bytes: &[u8],
        until: jiff::Timestamp,
    ) -> Result<(), Error> {
        if let Some(there) = self.get(key).await? {
            return if there.bytes == bytes {
                Ok(())
            } else {
                Err(Error::Differs { key: key.into() })
            };
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.to_vec().into())
            .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
            .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                until.as_second(),
            ))
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        // The lock from the object's head (some stores send it only there),
        // then the body.
        let head = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let lock = match (
            head.object_lock_mode(),
            head.object_lock_retain_until_date(),
        ) {
            (Some(mode), Some(at)) => jiff::Timestamp::from_second(at.secs())
                .ok()
                .map(|t| (mode.as_str().to_string(), t)),
            _ => None,
        };
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.error(e))?
            .into_bytes()
            .to_vec();
        Ok(Some(Stored { bytes, lock }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        self.list_after(prefix, "").await
    }

    async fn any(&self, prefix: &str) -> Result<bool, Error> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(!page.contents().is_empty())
    }

    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<Listed>, Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after((!start_after.is_empty()).then(|| start_after.to_string()))
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(e))?;
            listed.extend(page.contents().iter().filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    bytes: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                })
            }));
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }
}

/// A store in memory that enforces locks like S3 in compliance mode.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub objects: Mutex<BTreeMap<String, Stored>>,
}

#[async_trait]
impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory://records".into()
    }

    async fn put_locked(
        &self,
        key: &str,
        bytes: &[u8],
        until: jiff::Timestamp,
    ) -> Result<(), Error> {
        let mut objects = self
            .objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match objects.get(key) {
            Some(there) if there.bytes == bytes => Ok(()),
            Some(_) => Err(Error::Differs { key: key.into() }),
            None => {
                objects.insert(
                    key.into(),
                    Stored {
                        bytes: bytes.to_vec(),
                        lock: Some((MODE.into(), until)),
                    },
                );
                Ok(())
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        let objects = self
            .objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(objects.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let objects = self
            .objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, stored)| Listed {
                key: key.clone(),
                bytes: stored.bytes.len() as u64,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
