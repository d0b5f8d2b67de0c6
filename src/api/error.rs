//! The API's one error type: what went wrong serving, configuring or answering a client.

/// What went wrong in the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A token list (`AEGIS_API_TOKENS` or a tokens file) is malformed.
    #[error("API tokens: {0}")]
    Tokens(String),
    /// A tokens file could not be read.
    #[error("API tokens file {path}: {source}")]
    TokensFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Listening on a non-loopback address without tokens would open the fleet to anyone.
    #[error("refusing to listen on {0} without API tokens: set AEGIS_API_TOKENS or --tokens FILE (only loopback addresses get a token made up on the spot)")]
    OpenToTheNetwork(std::net::SocketAddr),
    /// A client of the API could not connect, or its connection failed.
    #[error("API client: {0}")]
    Client(String),
    /// The store for the history endpoints could not be opened.
    #[error("API history: {0}")]
    Store(String),
    /// The listener could not be bound or served.
    #[error("API server: {0}")]
    Io(#[from] std::io::Error),
}
