//! A file's identity beyond its path: `(st_dev, st_ino)`.
//!
//! Rotation by rename is detected by the path's identity changing; a saved position is only
//! trusted when the identity saved with it matches the file found at the path.

use std::fs::Metadata;

use crate::positions::FileIdentity;

/// The identity of the file `meta` describes.
#[cfg(unix)]
pub(crate) fn identity_of(meta: &Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Without inode numbers every file has the same identity, so rotation is only seen as the
/// path vanishing or shrinking (the ferrotail targets are Unix; this keeps the crate building).
#[cfg(not(unix))]
pub(crate) fn identity_of(_meta: &Metadata) -> FileIdentity {
    FileIdentity { dev: 0, ino: 0 }
}
