import CZstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The zstd contexts of one thread, created on first use and freed with the thread.
final class ZstdContexts {
    private var cctx: OpaquePointer?
    private var dctx: OpaquePointer?

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<ZstdContexts>.fromOpaque(pointer).release()
        }
        precondition(rc == 0, "pthread_key_create failed with \(rc)")
        return key
    }()

    /// This thread's contexts.
    static var current: ZstdContexts {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<ZstdContexts>.fromOpaque(pointer).takeUnretainedValue()
        }
        let contexts = ZstdContexts()
        pthread_setspecific(key, Unmanaged.passRetained(contexts).toOpaque())
        return contexts
    }

    func compressionContext() throws -> OpaquePointer {
        if let cctx { return cctx }
        guard let created = ZSTD_createCCtx() else { throw RecordsError(.compressionFailed, "ZSTD_createCCtx failed") }
        cctx = created
        return created
    }

    func decompressionContext() throws -> OpaquePointer {
        if let dctx { return dctx }
        guard let created = ZSTD_createDCtx() else { throw RecordsError(.compressionFailed, "ZSTD_createDCtx failed") }
        dctx = created
        return created
    }

    func trimCompressionContext() {
        if let cctx, ZSTD_sizeof_CCtx(cctx) > ZstdCodec.contextRetainedBytesMax {
            ZSTD_freeCCtx(cctx)
            self.cctx = nil
        }
    }

    func trimDecompressionContext() {
        if let dctx, ZSTD_sizeof_DCtx(dctx) > ZstdCodec.contextRetainedBytesMax {
            ZSTD_freeDCtx(dctx)
            self.dctx = nil
        }
    }

    deinit {
        if let cctx { ZSTD_freeCCtx(cctx) }
        if let dctx { ZSTD_freeDCtx(dctx) }
    }
}
