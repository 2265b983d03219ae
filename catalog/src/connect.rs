//! Opening the catalog: URL parsing, connection pool, SQLite pragmas, migrations.
//!
//! Exists so that the rest of the crate sees one `AnyPool` and never cares which database
//! is behind it; the few real differences between SQLite and PostgreSQL (pool sizing,
//! pragmas, how a write transaction starts) are decided here, once.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Executor, Transaction};

use crate::{Catalog, Error};

/// How long an SQLite writer waits for another writer (another process sharing the file,
/// or another pooled connection) before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u64 = 30_000;
/// Readers run concurrently in WAL mode; writers are serialised by SQLite anyway.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A catalog URL after validation, ready to hand to sqlx.
#[derive(Debug, PartialEq)]
pub(crate) struct ParsedUrl {
    pub(crate) backend: Backend,
    /// URL passed to sqlx (for SQLite files: with `mode=rwc` so the file is created).
    pub(crate) url: String,
    /// SQLite in-memory database: it lives only as long as its single connection.
    pub(crate) in_memory: bool,
    /// SQLite file path, to create its parent directory.
    pub(crate) sqlite_path: Option<String>,
}

pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, Error> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        // sqlx accepts `sqlite:path`, `sqlite://path` and `sqlite:///abs/path`.
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let in_memory =
            path == ":memory:" || query.is_some_and(|q| q.split('&').any(|kv| kv == "mode=memory"));
        if in_memory {
            return Ok(ParsedUrl {
                backend: Backend::Sqlite,
                url: url.to_string(),
                in_memory: true,
                sqlite_path: None,
            });
        }
        if path.is_empty() {
            return Err(Error::InvalidUrl(format!(
                "{url}: missing database file path"
            )));
        }
        let decoded = percent_decode(path)
            .ok_or_else(|| Error::InvalidUrl(format!("{url}: bad percent-encoding in path")))?;
        // sqlx's Any driver round-trips the URL through `url::Url`, which treats the first
        // segment of `sqlite://dir/x.db` as a host and normalises `..` segments away, so
        // relative paths are resolved here and sqlx only ever sees an absolute path.
        let mut abs = PathBuf::from(decoded);
        if abs.is_relative() {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::InvalidUrl(format!(
                    "{url}: relative path but no working directory: {e}"
                ))
            })?;
            abs = cwd.join(abs);
        }
        let abs = abs
            .to_str()
            .ok_or_else(|| Error::InvalidUrl(format!("{url}: path is not UTF-8")))?
            .to_string();
        let mut params: Vec<&str> = query
            .map(|q| q.split('&').filter(|kv| !kv.is_empty()).collect())
            .unwrap_or_default();
        // Without mode=rwc SQLite refuses to open a file that does not exist yet.
        if !params.iter().any(|kv| kv.starts_with("mode=")) {
            params.push("mode=rwc");
        }
        Ok(ParsedUrl {
            backend: Backend::Sqlite,
            url: format!(
                "sqlite://{}?{}",
                percent_encode_path(&abs),
                params.join("&")
            ),
            in_memory: false,
            sqlite_path: Some(abs),
        })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(ParsedUrl {
            backend: Backend::Postgres,
            url: url.to_string(),
            in_memory: false,
            sqlite_path: None,
        })
    } else {
        Err(Error::InvalidUrl(format!(
            "{}: expected sqlite:///path, sqlite::memory: or postgres://user@host:port/db",
            redact(url)
        )))
    }
}

/// Encodes every byte but unreserved characters and `/`, so `?`, `#`, `%` and spaces in a
/// file name survive sqlx's URL parsing (sqlx percent-decodes the path again).
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Drops a possible password from a URL before it goes into an error message or log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Catalog {
    /// Connects to `url`, applies pending migrations, and returns the catalog.
    ///
    /// `sqlite:///abs/path/catalog.db`, `sqlite://relative.db` (file and parent directory
    /// are created if missing), `sqlite::memory:` (tests), `postgres://user@host:port/db`.
    pub async fn connect(url: &str) -> Result<Catalog, Error> {
        sqlx::any::install_default_drivers();
        let parsed = parse_url(url)?;

        let options = match parsed.backend {
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT),
            Backend::Sqlite => {
                if let Some(path) = &parsed.sqlite_path {
                    create_parent_dir(path)?;
                }
                let options = if parsed.in_memory {
                    // Every new connection to `:memory:` would be a new, empty database, so
                    // keep exactly one connection alive forever.
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    AnyPoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
                };
                let in_memory = parsed.in_memory;
                options
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            // busy_timeout first, so switching the journal mode waits for
                            // other processes instead of failing.
                            conn.execute(
                                format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                            )
                            .await?;
                            if !in_memory {
                                // WAL: readers never block the writer; persistent per file.
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                            }
                            // FULL: a committed segment must survive power loss, since the
                            // WAL files behind it are deleted after the commit.
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            Ok(())
                        })
                    })
            }
        };

        let pool = options.connect(&parsed.url).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        tracing::info!(backend = parsed.backend.name(), url = %redact(url), "catalog ready");
        Ok(Catalog {
            pool,
            backend: parsed.backend,
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Closes the pool, waiting for connections to be returned; for graceful shutdown
    /// (lets SQLite checkpoint its WAL on the last close). Clones become unusable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write.
    ///
    /// On SQLite a plain (deferred) BEGIN takes a read snapshot first and fails with
    /// SQLITE_BUSY when it later tries to write after another writer committed; BEGIN
    /// IMMEDIATE takes the write lock up front, so concurrent writers queue on
    /// busy_timeout instead. PostgreSQL needs nothing special: row locks and constraints
    /// resolve races there.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, Error> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

fn create_parent_dir(path: &str) -> Result<(), Error> {
    let parent = std::path::Path::new(path).parent();
    if let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::Db(sqlx::Error::Configuration(
                format!("cannot create directory {}: {e}", parent.display()).into(),
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        let p = parse_url("sqlite:///abs/path/catalog.db").unwrap();
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.url, "sqlite:///abs/path/catalog.db?mode=rwc");
        assert_eq!(p.sqlite_path.as_deref(), Some("/abs/path/catalog.db"));

        let cwd = std::env::current_dir().unwrap();
        let cwd = cwd.to_str().unwrap();
        let p = parse_url("sqlite://relative.db").unwrap();
        assert_eq!(p.sqlite_path, Some(format!("{cwd}/relative.db")));
        assert_eq!(
            p.url,
            format!("sqlite://{}/relative.db?mode=rwc", percent_encode_path(cwd))
        );

        let p = parse_url("sqlite:x.db?cache=private").unwrap();
        assert_eq!(p.sqlite_path, Some(format!("{cwd}/x.db")));
        assert!(p.url.ends_with("/x.db?cache=private&mode=rwc"), "{}", p.url);

        let p = parse_url("sqlite:///x.db?mode=ro").unwrap();
        assert_eq!(p.url, "sqlite:///x.db?mode=ro");

        // Awkward characters survive the trip through sqlx's URL parser.
        let p = parse_url("sqlite:///tmp/a b%3Fc#d.db").unwrap();
        assert_eq!(p.sqlite_path.as_deref(), Some("/tmp/a b?c#d.db"));
        assert_eq!(p.url, "sqlite:///tmp/a%20b%3Fc%23d.db?mode=rwc");
        assert!(matches!(
            parse_url("sqlite:///tmp/%zz"),
            Err(Error::InvalidUrl(_))
        ));

        let p = parse_url("sqlite::memory:").unwrap();
        assert!(p.in_memory);
        assert_eq!(p.url, "sqlite::memory:");
        assert_eq!(p.sqlite_path, None);

        assert!(matches!(parse_url("sqlite://"), Err(Error::InvalidUrl(_))));
    }

    #[test]
    fn postgres_and_invalid_urls() {
        let p = parse_url("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        assert!(parse_url("postgresql://u@h/db").is_ok());
        match parse_url("mysql://u:secret@h/db") {
            Err(Error::InvalidUrl(msg)) => {
                assert!(!msg.contains("secret"), "{msg}");
                assert!(msg.contains("u:***@h"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_url("/tmp/x.db"), Err(Error::InvalidUrl(_))));
    }
}
