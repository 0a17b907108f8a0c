// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78).
// Hardware path: the SSE4.2 crc32 instruction, chosen at run time.
// Software path: slicing-by-8 tables, built once on first use.

#include "spool_crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY_REFLECTED 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        }
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][n] = c;
        }
    }
}

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v); // x86-64 and aarch64 Linux are little-endian
    return v;
}

uint32_t spool_crc32c_software(uint32_t crc, const void *data, size_t length) {
    pthread_once(&table_once, build_tables);
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        length--;
    }
    while (length >= 8) {
        uint64_t word = load_le64(p) ^ c;
        c = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^
            table[5][(word >> 16) & 0xff] ^ table[4][(word >> 24) & 0xff] ^
            table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
            table[1][(word >> 48) & 0xff] ^ table[0][(word >> 56) & 0xff];
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        length--;
    }
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
uint32_t spool_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = (uint32_t)~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        length--;
    }
    while (length >= 32) {
        c = _mm_crc32_u64(c, load_le64(p));
        c = _mm_crc32_u64(c, load_le64(p + 8));
        c = _mm_crc32_u64(c, load_le64(p + 16));
        c = _mm_crc32_u64(c, load_le64(p + 24));
        p += 32;
        length -= 32;
    }
    while (length >= 8) {
        c = _mm_crc32_u64(c, load_le64(p));
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        length--;
    }
    return ~(uint32_t)c;
}

int spool_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#else
uint32_t spool_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    return spool_crc32c_software(crc, data, length);
}

int spool_crc32c_hardware_available(void) { return 0; }
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn chosen = 0;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    chosen = spool_crc32c_hardware_available() ? spool_crc32c_hardware : spool_crc32c_software;
}

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t length) {
    pthread_once(&chosen_once, choose);
    return chosen(crc, data, length);
}
