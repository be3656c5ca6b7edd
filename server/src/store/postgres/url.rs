//! The shared store's connection string, which never shows its password.
//!
//! [`DatabaseUrl`] keeps the `postgres://` URL as given (for the driver) and shows it, in
//! `Display` and `Debug` alike, with the password replaced by `***`, whether it sits in the
//! user-info part (`postgres://user:secret@host/db`) or in a `password=` query parameter. Every
//! log line, error and status that names the database goes through that masked form.

use std::fmt;
use std::str::FromStr;

use crate::store::error::{StoreError, StoreErrorKind};

/// What stands in for a password when a URL is shown.
const MASK: &str = "***";

/// A `postgres://` or `postgresql://` URL that the driver accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
}

impl DatabaseUrl {
    /// Parses `text`, refusing what is not a PostgreSQL URL or what the driver cannot use. The
    /// error shows the URL masked.
    pub fn parse(text: &str) -> Result<DatabaseUrl, StoreError> {
        let text = text.trim();
        let url = DatabaseUrl { raw: text.to_owned() };
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "the shared store URL `{url}` is not a PostgreSQL URL; write it as \
                     postgres://USER@HOST:PORT/DATABASE"
                ),
            ));
        }
        tokio_postgres::Config::from_str(text).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Config,
                format!("the shared store URL `{url}` cannot be used: {e}; correct it in `[store] url` or ACAS_DATABASE_URL"),
            )
        })?;
        Ok(url)
    }

    /// The driver's configuration, password included: never shown.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        tokio_postgres::Config::from_str(&self.raw).expect("checked when parsed")
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        self.config().get_password().is_some()
    }

    fn masked(&self) -> String {
        let (scheme, rest) = self.raw.split_once("://").unwrap_or(("postgres", &self.raw));
        let (authority_end, has_path) = match rest.find(['/', '?']) {
            Some(i) => (i, true),
            None => (rest.len(), false),
        };
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_owned(),
        };
        let tail = if has_path { mask_query(tail) } else { String::new() };
        let mut shown = format!("{scheme}://{authority}{tail}");
        // Whatever the driver reads as the password goes, even where the URL's shape (a `/`,
        // `?` or `@` left unencoded in it) misled the split above.
        let password = tokio_postgres::Config::from_str(&self.raw)
            .ok()
            .and_then(|c| c.get_password().map(<[u8]>::to_vec));
        if let Some(password) = password.filter(|p| !p.is_empty())
            && let Ok(password) = std::str::from_utf8(&password)
        {
            shown = shown.replace(password, MASK);
        }
        shown
    }
}

/// `tail` (path and query) with the value of each `password` parameter masked.
fn mask_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_owned() };
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked_wherever_the_url_is_shown() {
        for (raw, shown) in [
            ("postgres://team:s3cr%40t@db.example:5432/acas", "postgres://team:***@db.example:5432/acas"),
            ("postgresql://team:s3cr%40t@db.example/acas", "postgresql://team:***@db.example/acas"),
            (
                "postgres://team@db.example/acas?password=s3cr&sslmode=require",
                "postgres://team@db.example/acas?password=***&sslmode=require",
            ),
            ("postgres://team:s3cr@db.example", "postgres://team:***@db.example"),
            ("postgres://db.example/acas", "postgres://db.example/acas"),
        ] {
            let url = DatabaseUrl::parse(raw).unwrap();
            assert_eq!(url.to_string(), shown);
            let debug = format!("{url:?}");
            assert!(!debug.contains("s3cr"), "{debug}");
            assert!(!url.to_string().contains("s3cr"));
        }
        assert!(DatabaseUrl::parse("postgres://team:s3cr@db.example/acas").unwrap().has_password());
    }

    #[test]
    fn a_refused_url_is_shown_masked_in_the_error() {
        let error = DatabaseUrl::parse("postgres://team:s3cr@db.example/acas?sslmode=bogus").unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Config);
        assert!(!error.to_string().contains("s3cr"), "{error}");
        assert!(error.to_string().contains("team:***@db.example"), "{error}");
        let error = DatabaseUrl::parse("mysql://team:s3cr@db.example/acas").unwrap_err();
        assert!(!error.to_string().contains("s3cr"), "{error}");
    }
}
