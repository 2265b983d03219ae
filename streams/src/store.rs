//! Opening the object store named by `--object-store`: a local folder (default), `s3://`
//! (the usual AWS environment variables, plus an endpoint override for S3-compatible
//! servers) or `memory://` for tests. A local folder's range reads come from memory maps
//! (`mapped.rs`).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::mapped::MappedLocalStore;

/// An opened object store, and its folder when it is local: object_store's local backend
/// does not fsync, so the flusher syncs segment files itself before the WAL lets go of
/// their rows (an acknowledged row must survive power loss).
#[derive(Clone, Debug)]
pub struct OpenedStore {
    pub store: Arc<dyn ObjectStore>,
    pub local_root: Option<std::path::PathBuf>,
}

impl OpenedStore {
    /// Makes a just-written object durable (a no-op for remote stores, whose PUT is).
    pub fn sync(&self, relative: &str) -> std::io::Result<()> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let file = root.join(relative);
        std::fs::File::open(&file)?.sync_all()?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Environment variable naming an S3-compatible endpoint (e.g. `http://127.0.0.1:9000`).
pub const S3_ENDPOINT_ENV: &str = "STREAMHOUSE_S3_ENDPOINT";

pub fn open(spec: &str) -> Result<OpenedStore> {
    if spec == "memory://" || spec == "memory" {
        return Ok(OpenedStore { store: Arc::new(InMemory::new()), local_root: None });
    }
    if let Some(rest) = spec.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config(format!("object store {spec:?} names no bucket")));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = std::env::var(S3_ENDPOINT_ENV).ok().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let s3 = builder.build().map_err(|e| Error::Config(format!("S3 object store: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        return Ok(OpenedStore { store, local_root: None });
    }
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    std::fs::create_dir_all(path).map_err(|e| Error::Config(format!("object store folder {path}: {e}")))?;
    let local = LocalFileSystem::new_with_prefix(path).map_err(|e| Error::Config(format!("object store folder {path}: {e}")))?;
    let root = std::fs::canonicalize(path).map_err(|e| Error::Config(format!("object store folder {path}: {e}")))?;
    Ok(OpenedStore { store: Arc::new(MappedLocalStore::new(local)), local_root: Some(root) })
}
