//! What can go wrong in the learning pipeline: files that cannot be read or written, datasets
//! and model files that are not what they claim, and the model refused for this build.

use std::path::PathBuf;

/// An error of the dataset, training, model or inference code, naming the file and what is
/// wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Parquet library's message.
        message: String,
    },
    /// A dataset is not what this build reads: a missing column, another feature list, a bad
    /// manifest.
    #[error("{path}: {problem}")]
    Dataset {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A model file is malformed, or was made for other features, horizons or components than
    /// this build has.
    #[error("model {path}: {problem}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Training could not proceed (too few rows, no positive example, bad settings).
    #[error("training: {0}")]
    Training(String),
}

impl MlError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MlError {
        let path = path.into();
        move |source| MlError::Io { path, source }
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> MlError {
        let path = path.into();
        move |e| MlError::Parquet { path, message: e.to_string() }
    }
}
