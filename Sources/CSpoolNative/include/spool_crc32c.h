#ifndef SPOOL_CRC32C_H
#define SPOOL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), as used by Kafka record batches v2.
///
/// `crc` is the running value: pass 0 to start, and the previous result to
/// continue over a further span. The result is the finished CRC of everything
/// fed so far (pre- and post-conditioning are done inside).

/// Picks the hardware path when the CPU has SSE4.2, otherwise the table path.
uint32_t spool_crc32c(uint32_t crc, const void *data, size_t length);

/// Portable slicing-by-8 table implementation.
uint32_t spool_crc32c_software(uint32_t crc, const void *data, size_t length);

/// SSE4.2 `crc32` instruction. Only call when spool_crc32c_hardware_available().
uint32_t spool_crc32c_hardware(uint32_t crc, const void *data, size_t length);

/// 1 when the running CPU supports the SSE4.2 CRC-32C instruction.
int spool_crc32c_hardware_available(void);

#endif
