//! The kinds of error a call can end with, as the binding hands them to
//! DuckDB: the message is what the user reads (unchanged by its kind); the
//! kind says whose move it is, so that tests, and any caller of the Rust
//! functions, can tell a refused parameter from a full memory budget without
//! reading the text.
//!
//! Stage code returns `anyhow::Result` and raises a typed error where the
//! kind is known where it happens (a parameter check, the memory budget, the
//! host refusing something): `Err(error::param(...))` and the like; the
//! error keeps its kind through `anyhow`'s context. At the boundary
//! ([`crate::binding`]'s guard) [`Error::classify`] finds that kind; an
//! error raised without one is about what the call was given, its rows or
//! a model table ([`Error::Input`]).

/// An error at the binding boundary: its message, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A parameter's value is refused: NULL, out of range, not one of the
    /// choices, the wrong type, or values that do not go together.
    Param(String),
    /// The rows the call reads cannot be used: a column of the wrong type,
    /// a NULL where a value is needed, a damaged model table, no rows.
    Input(String),
    /// The call would not fit `memory_limit`, or an allocation failed.
    Memory(String),
    /// DuckDB or the system refused or misused something: registering a
    /// function, a connection, threads, files, the network, an aggregate
    /// state used in a way the function cannot support.
    Host(String),
    /// A bug caught at the boundary (a panic): the session is intact.
    Internal(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// What an [`Error`] is about, without its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Param,
    Input,
    Memory,
    Host,
    Internal,
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Param(_) => Kind::Param,
            Error::Input(_) => Kind::Input,
            Error::Memory(_) => Kind::Memory,
            Error::Host(_) => Kind::Host,
            Error::Internal(_) => Kind::Internal,
        }
    }

    /// The message, as the user reads it.
    pub fn message(&self) -> &str {
        match self {
            Error::Param(m)
            | Error::Input(m)
            | Error::Memory(m)
            | Error::Host(m)
            | Error::Internal(m) => m,
        }
    }

    /// An error of `kind` with `message`.
    pub fn of(kind: Kind, message: String) -> Self {
        match kind {
            Kind::Param => Error::Param(message),
            Kind::Input => Error::Input(message),
            Kind::Memory => Error::Memory(message),
            Kind::Host => Error::Host(message),
            Kind::Internal => Error::Internal(message),
        }
    }

    /// The kind of an error from stage code: the innermost typed error of
    /// its chain (what happened first); [`Kind::Input`] when it has none.
    pub fn classify(error: &anyhow::Error) -> Kind {
        error
            .chain()
            .filter_map(|e| e.downcast_ref::<Error>())
            .last()
            .map_or(Kind::Input, Error::kind)
    }
}

/// A refused parameter, as an `anyhow` error that keeps its kind.
pub fn param(message: impl Into<String>) -> anyhow::Error {
    Error::Param(message.into()).into()
}

/// Unusable input rows.
pub fn input(message: impl Into<String>) -> anyhow::Error {
    Error::Input(message.into()).into()
}

/// Over the memory budget, or out of memory.
pub fn memory(message: impl Into<String>) -> anyhow::Error {
    Error::Memory(message.into()).into()
}

/// Refused or misused by DuckDB or the system.
pub fn host(message: impl Into<String>) -> anyhow::Error {
    Error::Host(message.into()).into()
}

/// The kind of an `anyhow` error, for tests that check it.
pub fn kind_of(error: &anyhow::Error) -> Kind {
    Error::classify(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_kind_survives_context_and_the_message_is_unchanged() {
        let e: anyhow::Result<()> = Err(memory("needs about 3.00 GB"));
        let e = e.context("ALS training").unwrap_err();
        assert_eq!(format!("{e:#}"), "ALS training: needs about 3.00 GB");
        assert_eq!(kind_of(&e), Kind::Memory);
        let plain = anyhow::anyhow!("a row has a NULL user_id");
        assert_eq!(kind_of(&plain), Kind::Input);
        assert_eq!(kind_of(&param("parameter `k` is 0")), Kind::Param);
        assert_eq!(
            kind_of(&host("could not start 2 worker threads")),
            Kind::Host
        );
        assert_eq!(Error::of(Kind::Param, "x".into()), Error::Param("x".into()));
        assert_eq!(Error::Host("y".into()).to_string(), "y");
    }

    #[test]
    fn the_innermost_kind_wins() {
        let inner: anyhow::Result<()> = Err(memory("out of memory while holding pairs"));
        let outer = inner
            .map_err(|e| e.context(Error::Host("while reading".into())))
            .unwrap_err();
        assert_eq!(kind_of(&outer), Kind::Memory);
    }
}
