// The types of the client's public API that are defined in lower modules, re-exported one by
// one so that `import SpoolClient` alone is enough to name them: an application matches
// `SpoolStatusError` codes, reads `ByteBuffer` keys and values, and may walk fetched
// `RecordBatch`es. The generated protocol messages (`Spool_V1_*`) are not re-exported.
@_exported import struct NIOCore.ByteBuffer
@_exported import struct SpoolProtocol.SpoolStatusError
@_exported import struct SpoolRecords.Record
@_exported import struct SpoolRecords.RecordBatch
@_exported import struct SpoolRecords.RecordHeader
