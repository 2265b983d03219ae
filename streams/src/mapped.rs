//! Range reads of local segment files served from memory maps.
//!
//! object_store's local backend answers every range read by zero-filling a fresh buffer and
//! copying the file's bytes into it on a blocking thread: for a scan that reads the same
//! column chunks query after query, that is a memset and a memcpy of every byte read (about
//! a tenth of a GROUP BY over 10 M rows). Segment files never change once written (a put
//! writes a temporary file and renames it over the name; nothing truncates or rewrites a
//! file in place), so a read-only map of each file is a safe, zero-copy view of its bytes:
//! ranges are slices of the map, the kernel's page cache is the only copy, and the pages of a
//! map stay mapped between queries.
//!
//! Every write, rename, copy and delete through this store drops the map of the names it
//! touches, so a reader never sees an old file under a reused name, and a deleted file's disk
//! space is not held by a map. Maps of at most [`MAX_MAPPED_FILES`] files are kept (oldest
//! first out); everything that is not a plain range read goes to the local backend as is.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// How many files stay mapped: a map costs address space and a file descriptor's worth of
/// kernel state, not memory; the page cache decides what stays resident.
pub const MAX_MAPPED_FILES: usize = 4096;

/// A local object store whose range reads come from memory maps (see the module comment).
pub struct MappedLocalStore {
    inner: LocalFileSystem,
    maps: Arc<Mutex<Maps>>,
}

/// A mapped file: its bytes (owning the map) and its metadata when it was mapped.
#[derive(Clone)]
struct MappedFile {
    bytes: Bytes,
    meta: ObjectMeta,
}

#[derive(Default)]
struct Maps {
    files: HashMap<Path, MappedFile>,
    /// Mapping order, for evicting the oldest; may name files already dropped.
    order: VecDeque<Path>,
    /// Bumped by every forget: a map made while a name was being replaced or deleted is
    /// used for its one read but not kept.
    generation: u64,
}

impl Maps {
    fn insert(&mut self, location: Path, file: MappedFile) {
        if self.files.insert(location.clone(), file).is_none() {
            self.order.push_back(location);
        }
        while self.files.len() > MAX_MAPPED_FILES {
            let Some(oldest) = self.order.pop_front() else { break };
            self.files.remove(&oldest);
        }
    }

    fn forget(&mut self, location: &Path) {
        self.generation += 1;
        if self.files.remove(location).is_some() {
            self.order.retain(|p| p != location);
        }
    }
}

/// An open file's map as `Bytes`: slices share the map, which lives until the last is dropped.
struct ReadOnlyMap(memmap2::Mmap);

impl AsRef<[u8]> for ReadOnlyMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedLocalStore {
    pub fn new(inner: LocalFileSystem) -> Self {
        MappedLocalStore { inner, maps: Arc::default() }
    }

    /// The file at `location` mapped, from the cache or mapped now. `None` when it cannot be
    /// (it changed while being mapped): the caller then reads through the local backend,
    /// which also reports a missing file the way object_store does.
    async fn mapped(&self, location: &Path) -> Result<Option<MappedFile>> {
        let generation = {
            let maps = self.maps.lock().expect("maps lock");
            if let Some(file) = maps.files.get(location) {
                return Ok(Some(file.clone()));
            }
            maps.generation
        };
        let meta = self.inner.head(location).await?;
        let path = self.inner.path_to_filesystem(location)?;
        let expected = meta.size;
        let mapped = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Bytes>> {
            let file = std::fs::File::open(&path)?;
            if file.metadata()?.len() != expected {
                return Ok(None); // replaced since `head`
            }
            if expected == 0 {
                return Ok(Some(Bytes::new())); // an empty file cannot be mapped
            }
            // SAFETY: the map is read-only, and files in this store are never modified in
            // place: puts write a temporary file and rename it over the name, deletes unlink
            // (the map keeps the old inode alive). Only something outside StreamHouse
            // truncating a segment file could invalidate the mapped pages.
            #[allow(unsafe_code)] // the one unsafe call of the project; see above
            let map = unsafe { memmap2::Mmap::map(&file)? };
            Ok(Some(Bytes::from_owner(ReadOnlyMap(map))))
        })
        .await
        .map_err(|e| object_store::Error::Generic { store: "MappedLocalStore", source: Box::new(e) })?;
        let bytes = match mapped {
            Ok(Some(bytes)) => bytes,
            // Gone or changed meanwhile, or not mappable: the local backend answers.
            Ok(None) | Err(_) => return Ok(None),
        };
        let file = MappedFile { bytes, meta };
        let mut maps = self.maps.lock().expect("maps lock");
        if maps.generation == generation {
            maps.insert(location.clone(), file.clone());
        }
        Ok(Some(file))
    }

    fn forget(&self, location: &Path) {
        self.maps.lock().expect("maps lock").forget(location);
    }

    /// Whether `options` asks for nothing but (part of) the current object.
    fn is_plain_read(options: &GetOptions) -> bool {
        !options.head
            && options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
    }
}

impl fmt::Debug for MappedLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedLocalStore").field("inner", &self.inner).finish()
    }
}

impl fmt::Display for MappedLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MappedLocalStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MappedLocalStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await;
        self.forget(location);
        result
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(ForgetOnComplete { upload, maps: self.maps.clone(), location: location.clone() }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let Some(range) = options.range.clone().filter(|_| Self::is_plain_read(&options)) else {
            return self.inner.get_opts(location, options).await;
        };
        let Some(file) = self.mapped(location).await? else {
            return self.inner.get_opts(location, options).await;
        };
        let Ok(range) = range.as_range(file.meta.size) else {
            return self.inner.get_opts(location, options).await; // its error, worded its way
        };
        let bytes = file.bytes.slice(range.start as usize..range.end as usize);
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async move { Ok(bytes) }).boxed()),
            meta: file.meta,
            range,
            attributes: Default::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match self.mapped(location).await? {
            Some(file) if ranges.iter().all(|r| r.start <= r.end && r.end <= file.meta.size) => {
                Ok(ranges.iter().map(|r| file.bytes.slice(r.start as usize..r.end as usize)).collect())
            }
            _ => self.inner.get_ranges(location, ranges).await,
        }
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        // Forgotten before the unlink (no new read maps the old file from the cache) and
        // after it (a read that mapped it meanwhile does not keep its disk space).
        let (before, after) = (self.maps.clone(), self.maps.clone());
        let forgetting = locations.inspect(move |location| {
            if let Ok(location) = location {
                before.lock().expect("maps lock").forget(location);
            }
        });
        self.inner
            .delete_stream(forgetting.boxed())
            .inspect(move |deleted| {
                if let Ok(location) = deleted {
                    after.lock().expect("maps lock").forget(location);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let result = self.inner.copy_opts(from, to, options).await;
        self.forget(to);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let result = self.inner.rename_opts(from, to, options).await;
        self.forget(from);
        self.forget(to);
        result
    }
}

/// A multipart upload that drops the map of its name when the new file takes the name (a
/// read during the upload maps the old file, which stays valid until then).
struct ForgetOnComplete {
    upload: Box<dyn MultipartUpload>,
    maps: Arc<Mutex<Maps>>,
    location: Path,
}

impl fmt::Debug for ForgetOnComplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgetOnComplete").field("upload", &self.upload).field("location", &self.location).finish()
    }
}

#[async_trait]
impl MultipartUpload for ForgetOnComplete {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.upload.complete().await;
        self.maps.lock().expect("maps lock").forget(&self.location);
        result
    }

    async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> MappedLocalStore {
        MappedLocalStore::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap())
    }

    #[tokio::test]
    async fn ranges_come_from_the_current_file_after_every_kind_of_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let a = Path::from("t/1/a.parquet");
        store.put(&a, Bytes::from_static(b"0123456789").into()).await.unwrap();
        assert_eq!(store.get_range(&a, 2..5).await.unwrap(), Bytes::from_static(b"234"));
        assert_eq!(store.get_ranges(&a, &[0..1, 8..10]).await.unwrap(), vec![Bytes::from_static(b"0"), Bytes::from_static(b"89")]);

        store.put(&a, Bytes::from_static(b"abcdefghij!").into()).await.unwrap();
        assert_eq!(store.get_range(&a, 2..5).await.unwrap(), Bytes::from_static(b"cde"), "a put forgets the old map");

        let b = Path::from("t/1/b.parquet");
        store.put(&b, Bytes::from_static(b"BBBB").into()).await.unwrap();
        assert_eq!(store.get_range(&b, 0..4).await.unwrap(), Bytes::from_static(b"BBBB"));
        store.rename(&a, &b).await.unwrap();
        assert_eq!(store.get_range(&b, 0..3).await.unwrap(), Bytes::from_static(b"abc"), "a rename forgets the target's map");

        store.delete(&b).await.unwrap();
        assert!(matches!(store.get_range(&b, 0..3).await, Err(object_store::Error::NotFound { .. })));
        assert!(store.maps.lock().unwrap().files.is_empty(), "deleted files are not held mapped");
    }

    #[tokio::test]
    async fn every_range_read_answers_as_the_local_backend_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let local = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let a = Path::from("a");
        store.put(&a, Bytes::from_static(b"0123").into()).await.unwrap();
        let empty = Path::from("empty");
        store.put(&empty, Bytes::new().into()).await.unwrap();
        for (path, range) in [(&a, 0..4), (&a, 1..3), (&a, 2..9), (&a, 4..4), (&a, 7..9), (&empty, 0..0), (&empty, 0..1)] {
            let ours = store.get_range(path, range.clone()).await.map_err(|e| e.to_string());
            let theirs = local.get_range(path, range.clone()).await.map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "get_range {path} {range:?}");
            let ours = store.get_ranges(path, std::slice::from_ref(&range)).await.map_err(|e| e.to_string());
            let theirs = local.get_ranges(path, std::slice::from_ref(&range)).await.map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "get_ranges {path} {range:?}");
        }
        let missing = store.get_range(&Path::from("nope"), 0..1).await;
        assert!(matches!(missing, Err(object_store::Error::NotFound { .. })), "{missing:?}");
        assert_eq!(store.get(&a).await.unwrap().bytes().await.unwrap(), Bytes::from_static(b"0123"));
    }

    #[tokio::test]
    async fn a_completed_multipart_upload_replaces_what_readers_see() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let a = Path::from("a");
        store.put(&a, Bytes::from_static(b"old!").into()).await.unwrap();
        let mut upload = store.put_multipart(&a).await.unwrap();
        upload.put_part(Bytes::from_static(b"new!").into()).await.unwrap();
        assert_eq!(store.get_range(&a, 0..4).await.unwrap(), Bytes::from_static(b"old!"), "maps the old file meanwhile");
        upload.complete().await.unwrap();
        assert_eq!(store.get_range(&a, 0..4).await.unwrap(), Bytes::from_static(b"new!"));
    }

    #[test]
    fn at_most_the_limit_of_files_stay_mapped() {
        let mut maps = Maps::default();
        let meta = ObjectMeta { location: Path::from("x"), last_modified: Default::default(), size: 0, e_tag: None, version: None };
        for i in 0..MAX_MAPPED_FILES + 10 {
            maps.insert(Path::from(format!("f{i}")), MappedFile { bytes: Bytes::new(), meta: meta.clone() });
        }
        assert_eq!(maps.files.len(), MAX_MAPPED_FILES);
        assert!(!maps.files.contains_key(&Path::from("f0")), "the oldest went first");
        assert!(maps.files.contains_key(&Path::from(format!("f{}", MAX_MAPPED_FILES + 9))));
    }
}
