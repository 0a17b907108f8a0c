/// Thrown inside storage when a `write` or `fsync` failed: what is on disk is no longer
/// known, so the partition must stop (and recover) rather than carry on. Failures to
/// get a descriptor are not this: they leave the file untouched.
struct DataStateUnknown: Error {
    let cause: StorageError
}
